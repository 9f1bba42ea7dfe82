"""Convergence through the ClickHouse sink (embedded chDB): the view equals SELECT *, also with
every event delivered twice, shuffled, by two writers."""

from __future__ import annotations

import asyncio
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
from cdc_replicator.events import ChangeEvent
from cdc_replicator.schema.registry import SchemaRegistry
from cdc_replicator.sinks.clickhouse import ClickHouseSink

from tests.integration.commitlog.helpers import unique_keyspace
from tests.integration.replicator.helpers import Scenario, ch_expected, ch_rows, diff, run_workload

pytestmark = pytest.mark.integration
STEPS = 300


@pytest.fixture(scope="module")
def scenario(cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str) -> Scenario:
    return run_workload(cql_session, registry, cdc_raw, unique_keyspace("repl_ch"), replication, seed=8, steps=STEPS)


async def _deliver(sink: ClickHouseSink, scenario: Scenario, events: list[ChangeEvent], r: random.Random) -> None:
    i = 0
    while i < len(events):
        size = r.randint(1, 120)
        batch = events[i : i + size]
        i += size
        await sink.write(batch, scenario.table_of, max(e.position for e in batch))


def _compare(client: Any, database: str, scenario: Scenario) -> list[str]:
    problems = []
    for name, table in scenario.tables.items():
        problems.extend(diff(name, ch_expected(table, scenario.expected[name]), ch_rows(client, database, table)))
    return problems


def test_clickhouse_view_equals_select_star(clickhouse_client: Any, scenario: Scenario) -> None:
    database = f"t_{uuid.uuid4().hex[:10]}"
    sink = ClickHouseSink("ch", clickhouse_client, database=database, pipeline="test/conv", node="node1")

    async def go() -> None:
        await sink.start()
        await _deliver(sink, scenario, scenario.events, random.Random(3))
        assert await sink.committed() == max(e.position for e in scenario.events)

    asyncio.run(go())
    assert sum(len(rows) for rows in scenario.expected.values()) > 30
    problems = _compare(clickhouse_client, database, scenario)
    assert not problems, "\n".join(problems[:30])


def test_clickhouse_duplicates_and_shuffled_replays_converge(clickhouse_client: Any, scenario: Scenario) -> None:
    database = f"t_{uuid.uuid4().hex[:10]}"
    sinks = [
        ClickHouseSink(f"ch-{n}", clickhouse_client, database=database, pipeline="test/conv", node=f"copy-{n}")
        for n in range(2)
    ]

    async def go() -> None:
        for sink in sinks:
            await sink.start()
        deliveries = []
        for n, sink in enumerate(sinks):
            r = random.Random(40 + n)
            events = list(scenario.events)
            r.shuffle(events)
            deliveries.append(_deliver(sink, scenario, events, r))
        await asyncio.gather(*deliveries)

    asyncio.run(go())
    problems = _compare(clickhouse_client, database, scenario)
    assert not problems, "\n".join(problems[:30])
