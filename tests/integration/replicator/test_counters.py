"""Counter deletions, with Cassandra's meaning, in Postgres and ClickHouse: a row, range or
partition deletion hides a counter written before it; a counter tombstone (``DELETE c FROM``)
hides it whatever the timestamps. Every event is delivered twice, shuffled."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cdc_replicator.schema.registry import SchemaRegistry
from cdc_replicator.sinks.clickhouse import ClickHouseSink
from cdc_replicator.sinks.postgres import PostgresSink

from tests.integration.commitlog.helpers import read_events, run, start_position, unique_keyspace
from tests.integration.commitlog.model import select_all
from tests.integration.replicator.helpers import ch_expected, ch_rows, diff, expected_rows, view_rows

pytestmark = pytest.mark.integration


def test_counter_deletions_hide_counters_in_postgres_and_clickhouse(
    cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str, postgres_dsn: str, pg_schema: str,
    clickhouse_client: Any,
) -> None:  # fmt: skip
    keyspace = unique_keyspace("repl_cnt")
    run(cql_session, f"CREATE KEYSPACE {keyspace} WITH replication = {replication}")
    table_name = f"{keyspace}.cnt"
    run(cql_session, f"CREATE TABLE {table_name} (pk int, ck int, c counter, d counter, PRIMARY KEY (pk, ck)) "
                     "WITH cdc = true")  # fmt: skip
    start = start_position(cdc_raw)
    for pk in range(4):
        for ck in range(3):
            run(
                cql_session,
                f"UPDATE {table_name} SET c = c + {pk * 10 + ck + 1}, d = d - 2 WHERE pk = {pk} AND ck = {ck}",
            )
    run(cql_session, f"DELETE FROM {table_name} WHERE pk = 0 AND ck = 1")  # a row
    run(cql_session, f"DELETE FROM {table_name} WHERE pk = 1")  # a partition
    run(cql_session, f"DELETE FROM {table_name} WHERE pk = 2 AND ck > 1")  # a range
    run(cql_session, f"DELETE c FROM {table_name} WHERE pk = 0 AND ck = 2")  # one counter
    run(cql_session, f"UPDATE {table_name} SET d = d + 5 WHERE pk = 3 AND ck = 0")  # untouched rows go on
    registry.refresh(force=True)
    events = read_events(cdc_raw, registry, keyspace, start, include=lambda t: t.cdc)
    table = registry.find(keyspace, "cnt")
    assert table is not None
    expected = select_all(cql_session, table)
    assert len(expected) == 7  # rows (1, *), (0, 1), (2, 2) are gone; (0, 2) keeps d only
    twice = events * 2
    random.Random(5).shuffle(twice)
    batches = [twice[i : i + 7] for i in range(0, len(twice), 7)]

    def table_of(_: Any) -> Any:
        return table

    async def go() -> list[str]:
        pg = PostgresSink("pg", postgres_dsn, pipeline="test/cnt", node="node1", schema=pg_schema)
        ch = ClickHouseSink("ch", clickhouse_client, database=pg_schema, pipeline="test/cnt", node="node1")
        for sink in (pg, ch):
            await sink.start()
            for batch in batches:
                await sink.write(batch, table_of, max(e.position for e in batch))
        await pg.close()
        conn = await asyncpg.connect(postgres_dsn)
        try:
            problems = [
                f"postgres: {p}"
                for p in diff("cnt", expected_rows(table, expected), await view_rows(conn, pg_schema, table))
            ]
        finally:
            await conn.close()
        actual = ch_rows(clickhouse_client, pg_schema, table)
        return problems + [f"clickhouse: {p}" for p in diff("cnt", ch_expected(table, expected), actual)]

    problems = asyncio.run(go())
    assert not problems, "\n".join(problems)
