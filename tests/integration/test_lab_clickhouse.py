"""The ClickHouse engine in the lab is the real one: ReplacingMergeTree collapses under FINAL."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration


def test_replacing_merge_tree_collapses_versions_and_deletions(clickhouse_client: Any) -> None:
    c = clickhouse_client
    c.command("CREATE DATABASE IF NOT EXISTS smoke")
    c.command("DROP TABLE IF EXISTS smoke.people")
    c.command(
        "CREATE TABLE smoke.people (id UInt32, email String, ver UInt64, is_deleted UInt8) "
        "ENGINE = ReplacingMergeTree(ver, is_deleted) ORDER BY id"
    )
    # Separate inserts make separate parts, so only the engine's merge logic can collapse them.
    c.insert(
        "smoke.people",
        [[1, "old@example.com", 1, 0], [2, "gone@example.com", 1, 0]],
        column_names=["id", "email", "ver", "is_deleted"],
    )
    c.insert("smoke.people", [[1, "new@example.com", 2, 0]], column_names=["id", "email", "ver", "is_deleted"])
    c.insert("smoke.people", [[2, "", 5, 1]], column_names=["id", "email", "ver", "is_deleted"])
    c.insert("smoke.people", [[1, "stale@example.com", 0, 0]], column_names=["id", "email", "ver", "is_deleted"])

    raw = c.query("SELECT count() FROM smoke.people").result_rows[0][0]
    final = c.query("SELECT id, email FROM smoke.people FINAL ORDER BY id").result_rows
    assert raw == 5
    assert final == [(1, "new@example.com")]
    assert c.server_version.startswith("26.")
