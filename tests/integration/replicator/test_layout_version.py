"""Tables made by another layout are never written with the new rules (issue 11, item 4).

A destination table created before layout versions (compared typed values: wrong for timeuuid,
uuid, negative numbers...) carries no mark; the sinks refuse to merge into it, with an error that
names the table and says what to do, rather than silently mixing two orders in one table. Tables
the sinks create carry ``LAYOUT_MARK``, and a restarted sink writes into them as before.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cdc_replicator.events import ChangeEvent
from cdc_replicator.schema.registry import SchemaRegistry
from cdc_replicator.sinks.base import DestinationError
from cdc_replicator.sinks.clickhouse import ClickHouseSink
from cdc_replicator.sinks.layout import LAYOUT_MARK
from cdc_replicator.sinks.postgres import PostgresSink

from tests.integration.commitlog.helpers import read_events, run, start_position, unique_keyspace

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def written(
    cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str
) -> tuple[str, list[ChangeEvent]]:
    ks = unique_keyspace("layout")
    run(cql_session, f"CREATE KEYSPACE {ks} WITH replication = {replication}")
    run(cql_session, f"CREATE TABLE {ks}.t (pk int, ts timeuuid, v int, PRIMARY KEY (pk, ts)) WITH cdc = true")
    after = start_position(cdc_raw)
    run(cql_session, f"INSERT INTO {ks}.t (pk, ts, v) VALUES (1, now(), 5)")
    registry.refresh(force=True)
    return ks, read_events(cdc_raw, registry, ks, after, include=lambda t: t.cdc)


def test_postgres_refuses_a_table_of_the_old_layout(
    postgres_dsn: str, pg_schema: str, registry: SchemaRegistry, written: tuple[str, list[ChangeEvent]]
) -> None:
    ks, events = written
    target = f"{ks}_t__rows"

    async def go() -> str:
        conn = await asyncpg.connect(postgres_dsn)
        try:
            await conn.execute(f'CREATE SCHEMA "{pg_schema}"')
            # What the previous layout made: typed keys in the primary key, v / v__t / v__x.
            await conn.execute(
                f'CREATE TABLE "{pg_schema}"."{target}" (pk integer NOT NULL, ts uuid NOT NULL, _live bigint, '
                "_live_x bigint, _del bigint, v integer, v__t bigint, v__x bigint, PRIMARY KEY (pk, ts))"
            )
        finally:
            await conn.close()
        sink = PostgresSink("pg", postgres_dsn, pipeline="test/layout", node="node1", schema=pg_schema)
        await sink.start()
        try:
            with pytest.raises(DestinationError) as refused:
                await sink.write(events, lambda e: registry.find(e.keyspace, e.table), events[-1].position)
            assert await sink.committed() is None  # nothing was committed past the refusal
        finally:
            await sink.close()
        return str(refused.value)

    message = asyncio.run(go())
    assert f"{pg_schema}.{target}" in message
    assert LAYOUT_MARK in message
    assert "Drop" in message


def test_postgres_marks_its_tables_and_writes_into_them_again(
    postgres_dsn: str, pg_schema: str, registry: SchemaRegistry, written: tuple[str, list[ChangeEvent]]
) -> None:
    ks, events = written

    async def go() -> list[str]:
        for node in ("node1", "node1-restarted"):
            sink = PostgresSink("pg", postgres_dsn, pipeline="test/layout", node=node, schema=pg_schema)
            await sink.start()
            try:
                await sink.write(events, lambda e: registry.find(e.keyspace, e.table), events[-1].position)
            finally:
                await sink.close()
        conn = await asyncpg.connect(postgres_dsn)
        try:
            rows = await conn.fetch(
                "SELECT obj_description(c.oid, 'pg_class') AS mark FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r' "
                "AND c.relname LIKE $2",
                pg_schema,
                f"{ks}_t__%",
            )
            assert await conn.fetchval(f'SELECT count(*) FROM "{pg_schema}"."{ks}_t"') == 1
        finally:
            await conn.close()
        return [r["mark"] for r in rows]

    marks = asyncio.run(go())
    assert marks
    assert set(marks) == {LAYOUT_MARK}


def test_clickhouse_refuses_a_table_of_the_old_layout(
    clickhouse_client: Any, registry: SchemaRegistry, written: tuple[str, list[ChangeEvent]]
) -> None:
    ks, events = written
    database = f"t_{uuid.uuid4().hex[:10]}"
    clickhouse_client.command(f"CREATE DATABASE `{database}`")
    clickhouse_client.command(
        f"CREATE TABLE `{database}`.`{ks}_t__rows` (pk Int32, _static UInt8, ts UUID, "
        "_del SimpleAggregateFunction(max, Int64)) ENGINE = AggregatingMergeTree ORDER BY (pk, _static, ts)"
    )
    sink = ClickHouseSink("ch", clickhouse_client, database=database, pipeline="test/layout", node="node1")

    async def go() -> str:
        await sink.start()
        with pytest.raises(DestinationError) as refused:
            await sink.write(events, lambda e: registry.find(e.keyspace, e.table), events[-1].position)
        assert await sink.committed() is None
        return str(refused.value)

    try:
        message = asyncio.run(go())
    finally:
        clickhouse_client.command(f"DROP DATABASE IF EXISTS `{database}`")
    assert f"{database}.{ks}_t__rows" in message
    assert LAYOUT_MARK in message
