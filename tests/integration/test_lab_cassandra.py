"""Cassandra in the lab is real: a CDC table's writes land in cdc_raw with a durable offset."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def _cdc_indexes(cdc_raw: Path) -> dict[Path, int]:
    """Segments in cdc_raw with their durable offset (the idx file may be momentarily empty)."""
    found = {}
    for idx in cdc_raw.glob("CommitLog-*_cdc.idx"):
        first_line = idx.read_text().split("\n", 1)[0].strip()
        segment = idx.with_name(idx.name.replace("_cdc.idx", ".log"))
        if first_line.isdigit() and segment.exists():
            found[segment] = int(first_line)
    return found


def test_cdc_table_writes_reach_cdc_raw_with_a_durable_offset(
    cql_session: Any, cassandra_node: dict[str, Any], replication: str
) -> None:
    cql_session.execute(f"CREATE KEYSPACE IF NOT EXISTS lab_smoke WITH replication = {replication}")
    cql_session.execute(f"ALTER KEYSPACE lab_smoke WITH replication = {replication}")  # the ring may have grown
    cql_session.execute("CREATE TABLE IF NOT EXISTS lab_smoke.people (id int PRIMARY KEY, email text) WITH cdc = true")
    insert = cql_session.prepare("INSERT INTO lab_smoke.people (id, email) VALUES (?, ?)")
    run = uuid.uuid4().hex[:8]
    for i in range(100):
        cql_session.execute(insert, (i, f"person{i}-{run}@example.com"))
    last = f"person99-{run}@example.com".encode()

    def durable_segments_holding_the_last_write() -> list[tuple[Path, int]]:
        return [(s, o) for s, o in _cdc_indexes(cdc_raw).items() if o > 0 and last in s.read_bytes()[:o]]

    cdc_raw = Path(cassandra_node["cdc_raw"])
    # The idx file is rewritten on each commitlog sync: every 10 s in the lab's periodic mode.
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and not durable_segments_holding_the_last_write():
        time.sleep(0.5)
    found = durable_segments_holding_the_last_write()
    assert found, f"no CommitLog-*.log whose _cdc.idx offset covers the last write in {cdc_raw}: " + ", ".join(
        sorted(p.name for p in cdc_raw.iterdir())
    )
    segment, offset = found[0]
    assert segment.name.startswith("CommitLog-")
    assert offset > 0


def test_nodetool_reports_every_lab_node_up_and_normal(lab_layout: Any, cassandra_nodes: list[dict[str, Any]]) -> None:
    from e2e.lab import cassandra

    node = cassandra.running_nodes(lab_layout)[0]
    out = cassandra.nodetool(lab_layout, node, "status")
    up_normal = {line.split()[1] for line in out.splitlines() if line.startswith("UN ")}
    assert up_normal == {n["address"] for n in cassandra_nodes}
