"""Bad inputs: values a destination cannot hold go to its dead-letter table (and nothing else is
lost); a destination table altered by hand dead-letters that table's events with the reason while
other tables go on."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cdc_replicator.schema.registry import SchemaRegistry
from cdc_replicator.sinks.clickhouse import ClickHouseSink
from cdc_replicator.sinks.postgres import PostgresSink
from cdc_replicator.sinks.timescale import TimescaleSink

from tests.integration.commitlog.helpers import read_events, run, start_position, unique_keyspace

pytestmark = pytest.mark.integration


def _events(session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str) -> tuple[str, list[Any]]:
    ks = unique_keyspace("repl_bad")
    run(session, f"CREATE KEYSPACE {ks} WITH replication = {replication}")
    run(session, f"CREATE TABLE {ks}.t (k int PRIMARY KEY, v text, d date) WITH cdc = true")
    run(session, f"CREATE TABLE {ks}.other (k int PRIMARY KEY, v int) WITH cdc = true")
    after = start_position(cdc_raw)
    for k in range(5):
        run(session, f"INSERT INTO {ks}.t (k, v, d) VALUES (%s, %s, '2024-01-0{k + 1}')", (k, f"v{k}"))
        run(session, f"INSERT INTO {ks}.other (k, v) VALUES ({k}, {k})")
    run(session, f"INSERT INTO {ks}.t (k, v) VALUES (%s, %s)", (10, "nul\x00inside"))  # Postgres text refuses NUL
    run(session, f"INSERT INTO {ks}.t (k, d) VALUES (11, '1200-06-01')")  # outside ClickHouse's Date32
    registry.refresh(force=True)
    return ks, read_events(cdc_raw, registry, ks, after, include=lambda t: t.cdc)


def test_poison_values_go_to_dead_letters_and_the_rest_lands(
    cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str, postgres_dsn: str, pg_schema: str,
    clickhouse_client: Any,
) -> None:  # fmt: skip
    ks, events = _events(cql_session, registry, cdc_raw, replication)

    def table_of(e: Any) -> Any:
        return registry.find(e.keyspace, e.table)

    upto = max(e.position for e in events)

    async def postgres() -> tuple[list[Any], list[Any], Any]:
        sink = PostgresSink("pg", postgres_dsn, pipeline="test/bad", node="node1", schema=pg_schema)
        await sink.start()
        result = await sink.write(events, table_of, upto)
        assert len(result.dead) == 1
        await sink.close()
        conn = await asyncpg.connect(postgres_dsn)
        try:
            rows = await conn.fetch(f'SELECT k, v FROM "{pg_schema}"."{ks}_t" ORDER BY k')
            dead = await conn.fetch(f'SELECT "table", error, event FROM "{pg_schema}".cdc_dead_letters')
            offset = await conn.fetchval(f'SELECT position FROM "{pg_schema}".cdc_offsets')
        finally:
            await conn.close()
        return rows, dead, offset

    rows, dead, offset = asyncio.run(postgres())
    assert [r["k"] for r in rows] == [0, 1, 2, 3, 4, 11]
    assert len(dead) == 1
    assert dead[0]["table"] == "t"
    assert "0x00" in dead[0]["error"] or "\\u0000" in dead[0]["error"] or "NUL" in dead[0]["error"].upper()
    assert json.loads(dead[0]["event"])["partition_key"] == {"k": 10}
    assert offset == upto.position

    database = f"t_{uuid.uuid4().hex[:10]}"
    sink = ClickHouseSink("ch", clickhouse_client, database=database, pipeline="test/bad", node="node1")

    async def clickhouse() -> None:
        await sink.start()
        result = await sink.write(events, table_of, upto)
        assert [d.event.partition_key for d in result.dead if d.event is not None] == [{"k": 11}]

    asyncio.run(clickhouse())
    keys = [r[0] for r in clickhouse_client.query(f"SELECT k FROM `{database}`.`{ks}_t` ORDER BY k").result_rows]
    assert keys == [0, 1, 2, 3, 4, 10]
    dead_ch = clickhouse_client.query(f"SELECT error FROM `{database}`.cdc_dead_letters").result_rows
    assert len(dead_ch) == 1
    assert "Date32" in dead_ch[0][0]


def test_timescale_history_dead_letters_a_value_jsonb_refuses_and_moves_on(
    cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str, timescaledb_dsn: str, ts_schema: str
) -> None:
    """A change history holds changes as jsonb, which refuses a NUL in text: that one change is
    dead-lettered and the destination moves past it, instead of retrying the batch forever."""
    ks, events = _events(cql_session, registry, cdc_raw, replication)
    upto = max(e.position for e in events)

    async def timescale() -> tuple[list[Any], list[Any], Any]:
        sink = TimescaleSink("ts", timescaledb_dsn, pipeline="test/bad", node="node1", schema=ts_schema)
        await sink.start()
        result = await sink.write(events, lambda e: registry.find(e.keyspace, e.table), upto)
        await sink.close()
        assert [d.event.partition_key for d in result.dead if d.event is not None] == [{"k": 10}]
        conn = await asyncpg.connect(timescaledb_dsn)
        try:
            keys = await conn.fetch(f'SELECT _key FROM "{ts_schema}"."{ks}_t__history"')
            dead = await conn.fetch(f'SELECT "table", error FROM "{ts_schema}".cdc_dead_letters')
            offset = await conn.fetchval(f'SELECT position FROM "{ts_schema}".cdc_offsets')
        finally:
            await conn.close()
        return keys, dead, offset

    keys, dead, offset = asyncio.run(timescale())
    assert sorted(json.loads(r["_key"])["k"] for r in keys) == [0, 1, 2, 3, 4, 11]
    assert [d["table"] for d in dead] == ["t"]
    assert offset == upto.position


def test_destination_table_altered_by_hand_is_reported_and_others_continue(
    cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str, postgres_dsn: str, pg_schema: str
) -> None:
    ks, events = _events(cql_session, registry, cdc_raw, replication)
    clean = [e for e in events if e.partition_key["k"] < 10]
    half = len(clean) // 2

    def table_of(e: Any) -> Any:
        return registry.find(e.keyspace, e.table)

    async def go() -> tuple[list[Any], int]:
        sink = PostgresSink("pg", postgres_dsn, pipeline="test/bad", node="node1", schema=pg_schema)
        await sink.start()
        await sink.write(clean[:half], table_of, clean[half - 1].position)
        await sink.close()
        conn = await asyncpg.connect(postgres_dsn)
        try:
            await conn.execute(f'DROP VIEW "{pg_schema}"."{ks}_t"')
            await conn.execute(f'ALTER TABLE "{pg_schema}"."{ks}_t__rows" ALTER COLUMN v TYPE integer USING NULL')
            fresh = PostgresSink("pg", postgres_dsn, pipeline="test/bad", node="node1", schema=pg_schema)
            await fresh.start()
            result = await fresh.write(clean[half:], table_of, clean[-1].position)
            await fresh.close()
            dead = await conn.fetch(f'SELECT "table", error FROM "{pg_schema}".cdc_dead_letters')
            others = await conn.fetchval(f'SELECT count(*) FROM "{pg_schema}"."{ks}_other"')
        finally:
            await conn.close()
        assert result.applied == len([e for e in clean[half:] if e.table == "other"])
        return dead, int(others)

    dead, others = asyncio.run(go())
    assert others == 5
    assert dead
    assert {d["table"] for d in dead} == {"t"}
    assert all("incompatible destination table" in d["error"] and ".v is integer" in d["error"] for d in dead)
