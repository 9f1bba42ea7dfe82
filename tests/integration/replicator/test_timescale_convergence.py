"""TimescaleDB: a time-series table (timestamp in the key) converges to SELECT * in a hypertable;
other tables keep a change history to which replays add nothing."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cdc_replicator.schema.registry import SchemaRegistry
from cdc_replicator.sinks.timescale import TimescaleSink

from tests.integration.commitlog.helpers import read_events, run, start_position, unique_keyspace
from tests.integration.commitlog.model import select_all
from tests.integration.replicator.conftest import _drop_schema
from tests.integration.replicator.helpers import Scenario, diff, expected_rows, run_workload, view_rows

pytestmark = pytest.mark.integration


@pytest.fixture
def ts_schema(timescaledb_dsn: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    yield schema
    _drop_schema(timescaledb_dsn, schema)


def _metrics_workload(ks: str, seed: int, steps: int) -> list[str]:
    r = random.Random(seed)
    ts = int(time.time() * 1_000_000)
    base_ms = 1_700_000_000_000
    out = []
    for _ in range(steps):
        ts += 10
        device, at = r.randint(0, 3), base_ms + r.randint(0, 20) * 60_000
        choice = r.random()
        if choice < 0.45:
            ttl = f" AND TTL {r.randint(3600, 7200)}" if r.random() < 0.1 else ""
            out.append(
                f"INSERT INTO {ks}.metrics (device, at, v, tags) VALUES ({device}, {at}, {r.randint(-99, 99) / 4}, "
                f"{{'t{r.randint(0, 3)}'}}) USING TIMESTAMP {ts}{ttl}"
            )
        elif choice < 0.7:
            out.append(
                f"UPDATE {ks}.metrics USING TIMESTAMP {ts} SET tags = tags + {{'u{r.randint(0, 3)}'}}, "
                f"note = 'n{r.randint(0, 9)}' WHERE device = {device} AND at = {at}"
            )
        elif choice < 0.8:
            out.append(f"DELETE FROM {ks}.metrics USING TIMESTAMP {ts} WHERE device = {device} AND at = {at}")
        elif choice < 0.9:
            out.append(
                f"DELETE FROM {ks}.metrics USING TIMESTAMP {ts} WHERE device = {device} AND at >= {at} "
                f"AND at < {at + r.randint(1, 4) * 60_000}"
            )
        elif choice < 0.95:
            out.append(f"DELETE note FROM {ks}.metrics USING TIMESTAMP {ts} WHERE device = {device} AND at = {at}")
        else:
            out.append(f"DELETE FROM {ks}.metrics USING TIMESTAMP {ts} WHERE device = {device}")
    return out


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
    for statement in _metrics_workload(ks, seed=5, steps=250):
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
