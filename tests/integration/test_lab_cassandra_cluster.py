"""Three lab nodes form one ring: with replication factor 3 every node's cdc_raw gets the change."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.multinode]


def test_each_replica_writes_the_change_to_its_own_cdc_raw(cassandra_cluster: list[dict[str, Any]]) -> None:
    from cassandra import ConsistencyLevel
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile

    assert [n["address"] for n in cassandra_cluster] == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    profile = ExecutionProfile(consistency_level=ConsistencyLevel.ALL, request_timeout=30)
    cluster = Cluster(
        [n["address"] for n in cassandra_cluster],
        port=cassandra_cluster[0]["cql_port"],
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )
    try:
        session = cluster.connect()
        hosts = {h.address for h in cluster.metadata.all_hosts() if h.is_up}
        assert hosts == {"127.0.0.1", "127.0.0.2", "127.0.0.3"}
        session.execute(
            "CREATE KEYSPACE IF NOT EXISTS lab_ring "
            "WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}"
        )
        session.execute("CREATE TABLE IF NOT EXISTS lab_ring.events (id uuid PRIMARY KEY, note text) WITH cdc = true")
        marker = f"replicated-{uuid.uuid4()}"
        session.execute("INSERT INTO lab_ring.events (id, note) VALUES (%s, %s)", (uuid.uuid4(), marker))
    finally:
        cluster.shutdown()

    def holds_marker(node: dict[str, Any]) -> bool:
        return any(marker.encode() in seg.read_bytes() for seg in Path(node["cdc_raw"]).glob("CommitLog-*.log"))

    # Each replica appended the mutation to its own commitlog, hard-linked into its own cdc_raw.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(holds_marker(n) for n in cassandra_cluster):
        time.sleep(0.5)
    assert [holds_marker(n) for n in cassandra_cluster] == [True, True, True]
