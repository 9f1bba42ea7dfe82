"""Convergence: a seeded workload's events, through the Postgres sink, equal SELECT * table by table.

The workload (the commitlog differential test's: every CQL type, partial updates, collection
appends/removals/overwrites, statics, TTLs, row/range/partition deletions, counters, DESC
clustering, ALTER ADD/DROP mid-stream) runs once per module; each test replays its events
into a fresh Postgres schema in its own way.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cdc_replicator.events import ChangeEvent
from cdc_replicator.schema.registry import SchemaRegistry
from cdc_replicator.sinks.postgres import PostgresSink

from tests.integration.commitlog.helpers import unique_keyspace
from tests.integration.replicator.helpers import Scenario, diff, expected_rows, run_workload, view_rows

pytestmark = pytest.mark.integration
STEPS = 300


@pytest.fixture(scope="module")
def scenario(cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str) -> Scenario:
    return run_workload(cql_session, registry, cdc_raw, unique_keyspace("repl_pg"), replication, seed=7, steps=STEPS)


async def _deliver(sink: PostgresSink, scenario: Scenario, events: list[ChangeEvent], r: random.Random) -> None:
    i = 0
    while i < len(events):
        size = r.randint(1, 80)
        batch = events[i : i + size]
        i += size
        await sink.write(batch, scenario.table_of, max(e.position for e in batch))


async def _compare(dsn: str, schema: str, scenario: Scenario) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        problems = []
        for name, table in scenario.tables.items():
            actual = await view_rows(conn, schema, table)
            problems.extend(diff(name, expected_rows(table, scenario.expected[name]), actual))
        return problems
    finally:
        await conn.close()


def test_postgres_view_equals_select_star(postgres_dsn: str, pg_schema: str, scenario: Scenario) -> None:
    async def go() -> list[str]:
        sink = PostgresSink("pg", postgres_dsn, pipeline="test/conv", node="node1", schema=pg_schema)
        await sink.start()
        try:
            await _deliver(sink, scenario, scenario.events, random.Random(1))
            assert await sink.committed() == max(e.position for e in scenario.events)
        finally:
            await sink.close()
        return await _compare(postgres_dsn, pg_schema, scenario)

    assert {e.table for e in scenario.events} == {"main", "cnt", "rev"}
    assert sum(len(rows) for rows in scenario.expected.values()) > 30
    problems = asyncio.run(go())
    assert not problems, "\n".join(problems[:30])


@pytest.mark.parametrize("seed", [11, 12])
def test_postgres_duplicates_and_shuffled_replays_converge(
    postgres_dsn: str, pg_schema: str, scenario: Scenario, seed: int
) -> None:
    """Every event twice, shuffled, from two writers sharing the destination (two replicators
    reading copies of the same segments): the same state as a single ordered pass."""

    async def go() -> list[str]:
        sinks = [
            PostgresSink(f"pg-{n}", postgres_dsn, pipeline="test/conv", node=f"copy-{n}", schema=pg_schema)
            for n in range(2)
        ]
        for sink in sinks:
            await sink.start()
        try:
            deliveries = []
            for n, sink in enumerate(sinks):
                r = random.Random(seed * 10 + n)
                events = list(scenario.events)
                r.shuffle(events)
                deliveries.append(_deliver(sink, scenario, events, r))
            await asyncio.gather(*deliveries)
        finally:
            for sink in sinks:
                await sink.close()
        return await _compare(postgres_dsn, pg_schema, scenario)

    problems = asyncio.run(go())
    assert not problems, "\n".join(problems[:30])
