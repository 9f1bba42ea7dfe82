"""Mutations written by the real Cassandra decode into the right change events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cdc_replicator.cql.values import CounterValue
from cdc_replicator.events import Bound, ChangeEvent, Operation
from cdc_replicator.schema.registry import SchemaRegistry

from tests.integration.commitlog import fixtures
from tests.integration.commitlog.helpers import only, run, run_batch, start_position, wait_for_events

pytestmark = pytest.mark.integration
cdc_raw, keyspace, registry = fixtures.cdc_raw, fixtures.keyspace, fixtures.registry


def _events(
    cdc_raw: Path, registry: SchemaRegistry, keyspace: str, after: Any, table: str, count: int
) -> list[ChangeEvent]:
    events = wait_for_events(cdc_raw, registry, keyspace, after, lambda evs: len(only(evs, table)) >= count)
    return only(events, table)


def test_insert_with_ttl_static_and_liveness(
    cql_session: Any, keyspace: str, cdc_raw: Path, registry: SchemaRegistry
) -> None:
    run(
        cql_session,
        f"CREATE TABLE {keyspace}.st (pk int, ck int, v text, s int static, PRIMARY KEY (pk, ck)) WITH cdc = true",
    )
    after = start_position(cdc_raw)
    run(cql_session, f"INSERT INTO {keyspace}.st (pk, ck, v, s) VALUES (1, 2, 'x', 7) USING TTL 600 AND TIMESTAMP 1000")
    registry.refresh(force=True)
    static, row = _events(cdc_raw, registry, keyspace, after, "st", 2)
    assert static.static
    assert static.operation is Operation.UPSERT
    assert not static.clustering
    assert static.cells["s"].value == 7
    assert static.cells["s"].timestamp == 1000
    assert static.cells["s"].ttl == 600
    assert row.partition_key == {"pk": 1}
    assert row.clustering == {"ck": 2}
    assert row.liveness is not None
    assert row.liveness.timestamp == 1000
    assert row.liveness.ttl == 600
    assert row.liveness.expires_at is not None
    assert row.cells["v"].local_deletion_time == row.liveness.expires_at
    assert row.cells["v"].value == "x"
    assert row.position == static.position
    assert (static.index, row.index) == (0, 1)


def test_deletions_rows_ranges_partitions_and_cells(
    cql_session: Any, keyspace: str, cdc_raw: Path, registry: SchemaRegistry
) -> None:
    run(
        cql_session,
        f"CREATE TABLE {keyspace}.del (pk int, a int, b text, v int, PRIMARY KEY (pk, a, b)) "
        "WITH cdc = true AND CLUSTERING ORDER BY (a ASC, b DESC)",
    )
    after = start_position(cdc_raw)
    q = f"DELETE FROM {keyspace}.del USING TIMESTAMP 5000"
    run(cql_session, f"{q} WHERE pk = 1 AND a = 1 AND b = 'x'")
    run(cql_session, f"{q} WHERE pk = 1 AND a = 2")
    run(cql_session, f"{q} WHERE pk = 1 AND a = 3 AND b > 'c' AND b <= 'k'")
    run(cql_session, f"{q} WHERE pk = 1 AND a >= 4 AND a < 6")
    run(cql_session, f"{q} WHERE pk = 2")
    run(cql_session, f"DELETE v FROM {keyspace}.del USING TIMESTAMP 6000 WHERE pk = 3 AND a = 1 AND b = 'y'")
    registry.refresh(force=True)
    row, prefix, desc_range, asc_range, partition, cell = _events(cdc_raw, registry, keyspace, after, "del", 6)
    assert row.operation is Operation.DELETE_ROW
    assert row.clustering == {"a": 1, "b": "x"}
    assert row.deletion is not None
    assert row.deletion.timestamp == 5000
    # A clustering-prefix delete is a range tombstone over the prefix, both ends inclusive.
    assert prefix.operation is Operation.DELETE_RANGE
    assert (prefix.range_start, prefix.range_end) == (Bound((2,), True), Bound((2,), True))
    # b is DESC: in clustering order the range starts at 'k' (inclusive) and ends at 'c'.
    assert (desc_range.range_start, desc_range.range_end) == (Bound((3, "k"), True), Bound((3, "c"), False))
    assert (asc_range.range_start, asc_range.range_end) == (Bound((4,), True), Bound((6,), False))
    assert partition.operation is Operation.DELETE_PARTITION
    assert partition.partition_key == {"pk": 2}
    assert partition.deletion is not None
    assert partition.deletion.timestamp == 5000
    assert cell.operation is Operation.UPSERT
    assert cell.cells["v"].deleted
    assert cell.cells["v"].value is None
    assert cell.cells["v"].timestamp == 6000
    assert cell.liveness is None


def test_collections_overwrite_append_remove_and_udt_fields(
    cql_session: Any, keyspace: str, cdc_raw: Path, registry: SchemaRegistry
) -> None:
    run(cql_session, f"CREATE TYPE {keyspace}.pt (x int, y text)")
    run(
        cql_session,
        f"CREATE TABLE {keyspace}.coll (pk int PRIMARY KEY, l list<int>, s set<text>, m map<text, int>, u pt) "
        "WITH cdc = true",
    )
    after = start_position(cdc_raw)
    t = f"{keyspace}.coll"
    run(cql_session, f"UPDATE {t} USING TIMESTAMP 100 SET l = [1, 2], s = {{'a'}}, m = {{'k': 1}} WHERE pk = 1")
    run(cql_session, f"UPDATE {t} USING TIMESTAMP 200 SET l = l + [3], s = s + {{'b'}}, m['j'] = 2 WHERE pk = 1")
    run(cql_session, f"UPDATE {t} USING TIMESTAMP 300 SET s = s - {{'a'}}, m = m - {{'k'}} WHERE pk = 1")
    run(cql_session, f"UPDATE {t} USING TIMESTAMP 400 SET u.y = 'why' WHERE pk = 1")
    run(cql_session, f"UPDATE {t} USING TIMESTAMP 500 SET u = {{x: 1, y: 'z'}} WHERE pk = 1")
    registry.refresh(force=True)
    overwrite, append, remove, field, whole = _events(cdc_raw, registry, keyspace, after, "coll", 5)
    # An overwrite deletes the old collection just before (ts - 1) writing the new one...
    for name in ("l", "s", "m"):
        column = overwrite.complex[name]
        assert column.deletion is not None
        assert column.deletion.timestamp == 99
    assert [c.value for c in overwrite.complex["l"].cells] == [1, 2]
    assert [c.path for c in overwrite.complex["s"].cells] == ["a"]
    assert [(c.path, c.value) for c in overwrite.complex["m"].cells] == [("k", 1)]
    # ...an append does not.
    assert all(append.complex[n].deletion is None for n in ("l", "s", "m"))
    assert [c.value for c in append.complex["l"].cells] == [3]
    assert [(c.path, c.value, c.timestamp) for c in append.complex["m"].cells] == [("j", 2, 200)]
    removed = {n: [(c.path, c.deleted) for c in remove.complex[n].cells] for n in ("s", "m")}
    assert removed == {"s": [("a", True)], "m": [("k", True)]}
    assert field.complex["u"].deletion is None
    assert [(c.path, c.value) for c in field.complex["u"].cells] == [("y", "why")]
    assert whole.complex["u"].deletion is not None
    assert whole.complex["u"].deletion.timestamp == 499
    assert [(c.path, c.value) for c in whole.complex["u"].cells] == [("x", 1), ("y", "z")]


def test_counters(cql_session: Any, keyspace: str, cdc_raw: Path, registry: SchemaRegistry) -> None:
    run(cql_session, f"CREATE TABLE {keyspace}.cnt (pk int PRIMARY KEY, c counter) WITH cdc = true")
    after = start_position(cdc_raw)
    run(cql_session, f"UPDATE {keyspace}.cnt SET c = c + 5 WHERE pk = 1")
    run(cql_session, f"UPDATE {keyspace}.cnt SET c = c - 7 WHERE pk = 1")
    run(cql_session, f"UPDATE {keyspace}.cnt SET c = c + 9223372036854775807 WHERE pk = 2")
    run(cql_session, f"UPDATE {keyspace}.cnt SET c = c + 2 WHERE pk = 2")
    registry.refresh(force=True)
    events = _events(cdc_raw, registry, keyspace, after, "cnt", 4)
    # The commitlog holds the leader replica's new running total for its shard, not the
    # delta; leaders vary between writes, so the value is the sum of each shard's latest
    # count, with Java's wrapping long arithmetic.
    for pk in (1, 2):
        values = [e.cells["c"].value for e in events if e.partition_key["pk"] == pk]
        assert len(values) == 2
        assert all(len(v) == 1 for v in values)
        (expected,) = cql_session.execute(f"SELECT c FROM {keyspace}.cnt WHERE pk = {pk}").one()
        assert CounterValue.merge_total(values) == expected
    assert expected == -9223372036854775807


def test_batch_across_tables_and_filtering(
    cql_session: Any, keyspace: str, cdc_raw: Path, registry: SchemaRegistry
) -> None:
    run(cql_session, f"CREATE TABLE {keyspace}.a (pk int PRIMARY KEY, v int) WITH cdc = true")
    run(cql_session, f"CREATE TABLE {keyspace}.b (pk int PRIMARY KEY, v int) WITH cdc = false")
    run(cql_session, f"CREATE TABLE {keyspace}.c (pk int PRIMARY KEY, v int) WITH cdc = true")
    after = start_position(cdc_raw)
    run_batch(
        cql_session,
        [
            (f"DELETE FROM {keyspace}.b WHERE pk = %s", (1,)),
            (f"INSERT INTO {keyspace}.a (pk, v) VALUES (%s, %s)", (1, 10)),
            (f"INSERT INTO {keyspace}.c (pk, v) VALUES (%s, %s)", (1, 30)),
        ],
        logged=False,
    )
    registry.refresh(force=True)
    everything = wait_for_events(cdc_raw, registry, keyspace, after, lambda evs: len(evs) >= 3)
    # One mutation (same partition key, one keyspace) holding three partition updates.
    assert len({e.position for e in everything}) == 1
    assert sorted((e.table, e.operation.value) for e in everything) == [
        ("a", "upsert"),
        ("b", "delete_partition"),
        ("c", "upsert"),
    ]
    cdc_only = wait_for_events(cdc_raw, registry, keyspace, after, lambda evs: len(evs) >= 2, include=lambda t: t.cdc)
    assert sorted((e.table, e.cells["v"].value) for e in cdc_only) == [("a", 10), ("c", 30)]
