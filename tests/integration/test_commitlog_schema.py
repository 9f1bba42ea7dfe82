"""Schema by table id: unknown tables trigger a refresh; ALTER ADD/DROP mid-stream decode right."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cdc_replicator.schema.loader import load_snapshot, schema_version
from cdc_replicator.schema.registry import SchemaRegistry

from tests.integration.commitlog import fixtures
from tests.integration.commitlog.helpers import only, registry_for, run, start_position, wait_for_events

pytestmark = pytest.mark.integration
cdc_raw, keyspace = fixtures.cdc_raw, fixtures.keyspace


def test_alter_add_drop_and_unknown_table(cql_session: Any, keyspace: str, cdc_raw: Path) -> None:
    registry = registry_for(cql_session)  # loaded before the table exists
    refreshes = registry.refreshes
    t = f"{keyspace}.evolving"
    run(cql_session, f"CREATE TABLE {t} (pk int PRIMARY KEY, a int, b text) WITH cdc = true")
    after = start_position(cdc_raw)
    run(cql_session, f"INSERT INTO {t} (pk, a, b) VALUES (1, 1, 'old b')")
    run(cql_session, f"ALTER TABLE {t} DROP b")
    run(cql_session, f"ALTER TABLE {t} ADD c list<int>")
    run(cql_session, f"INSERT INTO {t} (pk, a, c) VALUES (2, 2, [7])")
    run(cql_session, f"ALTER TABLE {t} ADD b text")
    run(cql_session, f"INSERT INTO {t} (pk, b) VALUES (3, 'new b')")

    events = only(
        wait_for_events(cdc_raw, registry, keyspace, after, lambda evs: len(only(evs, "evolving")) >= 3), "evolving"
    )
    first, second, third = events
    assert registry.refreshes > refreshes
    # Written before the DROP: b's cell is older than the drop, so Cassandra ignores it too.
    assert set(first.cells) == {"a"}
    assert set(second.cells) == {"a"}
    assert [c.value for c in second.complex["c"].cells] == [7]
    # Re-added b: new writes are visible again.
    assert third.cells["b"].value == "new b"
    table = registry.find(keyspace, "evolving")
    assert table is not None
    (row,) = cql_session.execute(f"SELECT b FROM {t} WHERE pk = 1")
    assert row.b is None


def test_schema_version_change_triggers_refresh(cql_session: Any, keyspace: str) -> None:
    registry = SchemaRegistry(lambda: load_snapshot(cql_session), version_source=lambda: schema_version(cql_session))
    assert not registry.refresh_if_changed()
    run(cql_session, f"CREATE TABLE {keyspace}.fresh (pk int PRIMARY KEY) WITH cdc = true")
    assert registry.refresh_if_changed()
    assert registry.find(keyspace, "fresh") is not None
