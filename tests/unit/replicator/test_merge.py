"""Folding events into per-key states: Cassandra's tie rules, and order/duplicate independence."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import pytest
from cdc_replicator.cql.types import CqlType
from cdc_replicator.events import Bound, Cell, ChangeEvent, ComplexColumn, Deletion, Liveness, Operation, Position
from cdc_replicator.sinks import chschema, history, pgschema
from cdc_replicator.sinks.layout import DestinationTypes, layout_for
from cdc_replicator.sinks.merge import Folder, Register, TableBatch
from cdc_replicator.sinks.pgtypes import converter

from tests.unit.masking.support import make_event, make_table

pytestmark = pytest.mark.unit

TABLE = make_table("ks", "t", [("pk", "int")], [("ck", "int")], [("v", "text"), ("s", "set<text>"), ("n", "int")])
LAYOUT = layout_for(TABLE)


def _folder() -> Folder:
    return Folder(LAYOUT, lambda _column, cql: converter(cql))


def test_higher_timestamp_wins() -> None:
    assert Register(2, "a", None).beats(Register(1, "z", None))
    assert not Register(1, "z", None).beats(Register(2, "a", None))


def test_equal_timestamps_follow_resolve_regular() -> None:
    tombstone, expiring, live = Register(5, None, None), Register(5, "b", 100, b"b"), Register(5, "c", None, b"c")
    assert tombstone.beats(expiring)
    assert tombstone.beats(live)
    assert expiring.beats(live)
    assert Register(5, "a", 200, b"a").beats(expiring)  # of two expiring cells the later expiry wins
    assert Register(5, "z", 100, b"z").beats(expiring)  # same expiry: the greater serialized value
    assert Register(5, "d", None, b"d").beats(live)  # of two live cells the greater serialized value wins
    assert not live.beats(Register(5, "d", None, b"d"))
    assert not tombstone.beats(Register(5, None, None))


def test_ties_compare_serialized_bytes_unsigned() -> None:
    """``-7`` serializes as ``ff ff ff f9``, above ``5``'s ``00 00 00 05``: Cassandra keeps -7."""
    table = make_table("ks", "t", [("pk", "int")], [], [("i", "int"), ("d", "double")])
    layout = layout_for(table)
    folder = Folder(layout, lambda _column, cql: converter(cql))
    for first, second in ((5, -7), (-7, 5)):
        batch = TableBatch(layout)
        for value, dbl in ((first, float(first)), (second, float(second))):
            folder.fold(batch, make_event(table, {"pk": 1}, cells={"i": Cell(value, 9), "d": Cell(dbl, 9)}))
        (row,) = batch.rows.values()
        assert row.cells["i"].value == -7
        assert row.cells["d"].value == -7.0


def _random_event(r: random.Random, n: int) -> ChangeEvent:
    pk, ck = {"pk": r.randint(0, 2)}, {"ck": r.randint(0, 3)}
    ts = r.randint(1, 30)  # few timestamps: plenty of ties
    position = Position(1, n)
    choice = r.random()
    base: dict[str, Any] = {
        "keyspace": "ks",
        "table": "t",
        "table_id": TABLE.id,
        "partition_key": pk,
        "position": position,
    }
    if choice < 0.1:
        return ChangeEvent(operation=Operation.DELETE_PARTITION, clustering={}, deletion=Deletion(ts, 0), **base)
    if choice < 0.2:
        low = r.randint(0, 3)
        return ChangeEvent(
            operation=Operation.DELETE_RANGE,
            clustering={},
            deletion=Deletion(ts, 0),
            range_start=Bound((low,), r.random() < 0.5),
            range_end=Bound((low + 1,), r.random() < 0.5),
            **base,
        )
    cells = {}
    if r.random() < 0.7:
        ttl = r.choice([None, 60])
        cells["v"] = Cell(r.choice(["a", "b", None]), ts, ttl, 1000 + ts if ttl else None, deleted=r.random() < 0.1)
    if r.random() < 0.3:
        cells["n"] = Cell(r.randint(-5, 5), ts)
    complex_columns = {}
    if r.random() < 0.4:
        deletion = Deletion(ts - 1, 0) if r.random() < 0.3 else None
        elements = tuple(Cell(None, ts, path=r.choice("xyz"), deleted=r.random() < 0.2) for _ in range(2))
        complex_columns["s"] = ComplexColumn(deletion, elements)
    return ChangeEvent(
        operation=Operation.DELETE_ROW if r.random() < 0.1 else Operation.UPSERT,
        clustering=ck,
        deletion=Deletion(ts, 0) if r.random() < 0.1 else None,
        liveness=Liveness(ts, *((60, 2000) if r.random() < 0.2 else ())) if r.random() < 0.5 else None,
        cells=cells,
        complex=complex_columns,
        **base,
    )


def _state(events: list[ChangeEvent]) -> Any:
    batch = TableBatch(LAYOUT)
    folder = _folder()
    for event in events:
        folder.fold(batch, event)
    return (batch.rows, batch.statics, batch.partitions, batch.ranges, batch.max_timestamp)


@pytest.mark.parametrize("seed", range(20))
def test_folding_ignores_order_and_duplicates(seed: int) -> None:
    r = random.Random(seed)
    events = [_random_event(r, n) for n in range(60)]
    replayed = events * 2
    r.shuffle(replayed)
    assert _state(events) == _state(replayed)


def test_range_bound_identity_is_stable() -> None:
    event = ChangeEvent(
        keyspace="ks",
        table="t",
        table_id=uuid.uuid4(),
        operation=Operation.DELETE_RANGE,
        partition_key={"pk": 1},
        clustering={},
        position=Position(1, 1),
        deletion=Deletion(9, 0),
        range_start=Bound((1,), True),
        range_end=Bound((2,), False),
    )
    first, second = _state([event]), _state([event, event])
    assert first == second
    assert len(first[3]) == 1


def test_hidden_columns_keep_their_register_but_views_show_null() -> None:
    table = make_table("ks", "t", [("id", "int")], [], [("d", "text"), ("n", "int")])
    layout = layout_for(table, None, DestinationTypes({"d": CqlType("boolean")}, hidden={"d"}))
    assert [(c.name, str(c.type), c.hidden) for c in layout.columns] == [("d", "boolean", True), ("n", "int", False)]
    assert not any(c.hidden for c in layout_for(table, None, {"d": CqlType("boolean")}).columns)
    # The flag is a live register: it keeps a row with no row marker (an UPDATE) alive.
    batch = TableBatch(layout)
    event = make_event(table, {"id": 1}, cells={"d": Cell(True, 5)})
    Folder(layout, lambda _column, cql: converter(cql)).fold(batch, event)
    assert batch.rows[(1, b"\x38")].cells["d"] == Register(5, True, None, b"\x01")
    (pg_view,) = pgschema.view_statements("s", layout)[1:]
    assert 'NULL::boolean AS "d"' in pg_view
    assert 'rv."d" IS NOT NULL' in pg_view  # still decides whether the row exists
    (ch_view,) = chschema.view_statements("s", layout)
    assert "CAST(NULL AS Nullable(Bool)) AS `d`" in ch_view
    assert "r.`_a0`" in ch_view  # its live flag still decides whether the row exists


def test_history_shows_hidden_columns_as_null() -> None:
    table = make_table("ks", "t", [("id", "int")], [], [("d", "text"), ("n", "int")])
    event = make_event(table, {"id": 1}, cells={"d": Cell(True, 5, ttl=60, local_deletion_time=99), "n": Cell(3, 5)})
    change = json.loads(history.history_row(event, frozenset({"d"}))[4])
    assert change["cells"] == {
        "d": {"value": None, "timestamp": 5, "ttl": 60, "expires_at": 99},
        "n": {"value": 3, "timestamp": 5},
    }
    assert json.loads(history.history_row(event)[4])["cells"]["d"]["value"] is True
