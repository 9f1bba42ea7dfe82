"""TimescaleDB: a time-series table (timestamp in the key) converges to SELECT * in a hypertable;
other tables keep a change history to which replays add nothing."""

from __future__ import annotations

import asyncio
import itertools
import random
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cdc_replicator.schema.registry import SchemaRegistry
from cdc_replicator.sinks.timescale import TimescaleSink

from tests.integration.commitlog.helpers import read_events, run, start_position, unique_keyspace
from tests.integration.commitlog.model import select_all
from tests.integration.replicator.helpers import Scenario, diff, expected_rows, run_workload, view_rows
from tests.integration.replicator.running import time_series_statements

pytestmark = pytest.mark.integration


def test_timescale_hypertable_on_time_column_converges(
    cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str, timescaledb_dsn: str, ts_schema: str
) -> None:
    ks = unique_keyspace("repl_ts")
    run(cql_session, f"CREATE KEYSPACE {ks} WITH replication = {replication}")
    run(
        cql_session,
        f"CREATE TABLE {ks}.metrics (device int, at timestamp, v double, note text, tags set<text>, "
        "PRIMARY KEY (device, at)) WITH cdc = true",
    )
    after = start_position(cdc_raw)
    for statement in itertools.islice(time_series_statements(ks, random.Random(5)), 250):
        run(cql_session, statement)
    registry.refresh(force=True)
    events = read_events(cdc_raw, registry, ks, after, include=lambda t: t.cdc)
    table = registry.find(ks, "metrics")
    assert table is not None
    expected = expected_rows(table, select_all(cql_session, table))

    async def go() -> tuple[Any, int]:
        sink = TimescaleSink(
            "ts",
            timescaledb_dsn,
            pipeline="test/ts",
            node="node1",
            schema=ts_schema,
            time_columns={f"{ks}.metrics": ("at", "1 hour")},
        )
        await sink.start()
        r = random.Random(9)
        shuffled = events * 2
        r.shuffle(shuffled)
        for i in range(0, len(shuffled), 50):
            batch = shuffled[i : i + 50]
            await sink.write(batch, lambda e: registry.find(e.keyspace, e.table), max(e.position for e in batch))
        await sink.close()
        conn = await asyncpg.connect(timescaledb_dsn)
        try:
            actual = await view_rows(conn, ts_schema, table)
            hypertables = await conn.fetchval(
                "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_schema = $1", ts_schema
            )
        finally:
            await conn.close()
        return actual, hypertables

    actual, hypertables = asyncio.run(go())
    assert hypertables == 1
    assert len(expected) > 5
    problems = diff("metrics", expected, actual)
    assert not problems, "\n".join(problems[:30])


@pytest.fixture(scope="module")
def scenario(cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str) -> Scenario:
    return run_workload(cql_session, registry, cdc_raw, unique_keyspace("repl_tsh"), replication, seed=9, steps=120)


def test_timescale_history_replays_add_nothing(timescaledb_dsn: str, ts_schema: str, scenario: Scenario) -> None:
    async def deliver(events: list[Any]) -> int:
        sink = TimescaleSink("ts", timescaledb_dsn, pipeline="test/ts", node="node1", schema=ts_schema)
        await sink.start()
        for i in range(0, len(events), 40):
            batch = events[i : i + 40]
            await sink.write(batch, scenario.table_of, max(e.position for e in batch))
        await sink.close()
        conn = await asyncpg.connect(timescaledb_dsn)
        try:
            total = 0
            for name in scenario.tables:
                total += await conn.fetchval(
                    f'SELECT count(*) FROM "{ts_schema}"."{scenario.keyspace}_{name}__history"'
                )
            return int(total)
        finally:
            await conn.close()

    once = asyncio.run(deliver(scenario.events))
    replayed = list(scenario.events) * 2
    random.Random(4).shuffle(replayed)
    again = asyncio.run(deliver(replayed))
    assert once > len(scenario.events) // 2
    assert again == once
