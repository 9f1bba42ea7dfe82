"""Folding a batch of change events into per-key states, with Cassandra's reconciliation rules.

A destination merge statement can touch each key only once, so a batch is first folded here:
every event becomes last-writer-wins registers (per cell, per collection element, per row
marker) and maxima (row, range and partition deletion times). Folding is idempotent,
commutative and associative, and the destinations merge the folded states with the very same
rules, so the outcome never depends on batching, duplicates or order.

Ties at equal write timestamps follow ``Cells.resolveRegular`` (Cassandra 5.0): a tombstone
beats an expiring cell, which beats a live one; of two expiring cells the later expiry wins;
then the greater *serialized value*, compared as unsigned bytes (``Register.order``, made by
``cql.comparable.serializer_for`` once per cell), for simple cells, statics, collection
elements and UDT fields alike.

Rows are keyed by their clustering's byte-comparable form (``cql.comparable.ClusteringKey``),
and range tombstones by the forms of their two bounds, so every destination compares clustering
keys and bounds as plain bytes and gets ``ClusteringComparator``'s answer; collection elements
are keyed by the hex of their key's comparable form, so their order is Cassandra's too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cdc_replicator.cql.comparable import ClusteringKey, Encode, Serialize, comparable_for, serializer_for
from cdc_replicator.cql.jsonmap import to_json
from cdc_replicator.cql.types import CqlType
from cdc_replicator.events import ChangeEvent, Operation
from cdc_replicator.sinks.layout import TableLayout, ValueColumn

Convert = Callable[[Any], Any]
TOMBSTONE, EXPIRING, LIVE = 3, 2, 1


def rank(order: bytes | None, expires: int | None) -> int:
    """Cassandra's precedence at equal timestamps: tombstone (no value bytes) > expiring > live."""
    if order is None:
        return TOMBSTONE
    return EXPIRING if expires is not None else LIVE


@dataclass(slots=True)
class Register:
    """One cell. ``order`` None means a tombstone; a live cell has its value's serialized bytes
    there (empty for an empty value, which is live in Cassandra although it shows as null, like
    an empty frozen collection): the last tie-break."""

    timestamp: int
    value: Any
    expires: int | None
    order: bytes | None = None

    def beats(self, other: Register) -> bool:
        if self.timestamp != other.timestamp:
            return self.timestamp > other.timestamp
        mine, theirs = rank(self.order, self.expires), rank(other.order, other.expires)
        if mine != theirs:
            return mine > theirs
        if mine == EXPIRING:
            assert self.expires is not None
            assert other.expires is not None
            if self.expires != other.expires:
                return self.expires > other.expires
        if mine == TOMBSTONE:
            return False
        assert self.order is not None
        assert other.order is not None
        return self.order > other.order


@dataclass(slots=True)
class Elements:
    """A multi-cell column: the column's deletion time and a register per element key."""

    deletion: int | None = None
    cells: dict[str, Register] = field(default_factory=dict)

    def to_json(self) -> str:
        """``{key: [timestamp, value, expires, order as hex]}``: the form the destinations merge
        (lowercase hex strings compare as the bytes they encode; null: a tombstone)."""
        return json.dumps(
            {
                k: [r.timestamp, r.value, r.expires, None if r.order is None else r.order.hex()]
                for k, r in self.cells.items()
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )


@dataclass(slots=True)
class RowState:
    clustering: tuple[Any, ...] = ()
    """The row's clustering values as the destination stores them (converted)."""
    live: int | None = None
    live_expires: int | None = None
    deletion: int | None = None
    cells: dict[str, Register] = field(default_factory=dict)
    elements: dict[str, Elements] = field(default_factory=dict)
    counters: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    """Per counter column: replica counter id -> (clock, that replica's running total)."""
    counter_times: dict[str, int] = field(default_factory=dict)
    """Per counter column: its newest write time (a row, range or partition deletion at or after
    it hides the counter, as Cassandra's merged counter cell carries the newest timestamp)."""
    counter_deletions: dict[str, int] = field(default_factory=dict)
    """Per counter column: time of a ``DELETE c FROM`` tombstone. Cassandra lets a counter
    tombstone win whatever the timestamps (CASSANDRA-7346): the counter is gone for good."""


@dataclass(frozen=True, slots=True)
class RangeState:
    start: bytes
    """The start bound's comparable form (``ClusteringKey.start``)."""
    end: bytes
    deletion: int


@dataclass(slots=True)
class TableBatch:
    """Everything one batch does to one table, folded by key."""

    layout: TableLayout
    statics: dict[tuple[Any, ...], RowState] = field(default_factory=dict)
    partitions: dict[tuple[Any, ...], int] = field(default_factory=dict)
    ranges: dict[tuple[Any, ...], RangeState] = field(default_factory=dict)
    """Keyed by partition key + (start form, end form)."""
    rows: dict[tuple[Any, ...], RowState] = field(default_factory=dict)
    """Keyed by partition key + (clustering form,)."""
    events: int = 0
    max_timestamp: int = 0


def _max(a: int | None, b: int) -> int:
    return b if a is None or b > a else a


def element_key_encoder(cql: CqlType) -> Callable[[Any], str]:
    """The destination key of a multi-cell column's element: the hex of the cell path's comparable
    form (a list's timeuuid, a set element, a map key), so sorting keys sorts as Cassandra does;
    a UDT's field name."""
    if cql.kind == "udt":
        return str
    encode: Encode = comparable_for(CqlType("timeuuid") if cql.kind == "list" else cql.params[0])

    def key(path: Any) -> str:
        form = encode(path)
        return "" if form is None else form.hex()

    return key


def element_value(kind: str, path: Any, value: Any) -> Any:
    if kind == "set":
        return to_json(path)
    if kind == "map":
        return [to_json(path), to_json(value)]
    return to_json(value)


def element_order(cql: CqlType) -> Callable[[Any, Any], bytes]:
    """``(path, value) ->`` the serialized bytes of an element cell's value, for ties: a list's
    element, a map's value, a UDT field's value (by the field's own type); a set's cells hold none."""
    if cql.kind == "set":
        return lambda _path, _value: b""
    if cql.kind == "udt":
        by_field = {name: serializer_for(t) for name, t in zip(cql.fields, cql.params, strict=True)}

        def field_bytes(path: Any, value: Any) -> bytes:
            serialize = by_field.get(path)
            return b"" if serialize is None or value is None else serialize(value)

        return field_bytes
    serialize = serializer_for(cql.params[-1])
    return lambda _path, value: serialize(value)


class Folder:
    """Folds events of one table into a ``TableBatch`` with the destination's value converters.

    Everything per column (converters, serializers, element key encoders) is built here once per
    table layout; the fold computes each comparable form once per event key."""

    def __init__(self, layout: TableLayout, convert: Callable[[ValueColumn | None, Any], Convert]) -> None:
        self.layout = layout
        self.key_converters = [convert(None, k.type) for k in layout.key_columns]
        self.pk_width = len(layout.partition_key)
        self.clustering_key = ClusteringKey(
            [c.type for c in layout.clustering], [c.descending for c in layout.clustering]
        )
        self.columns: dict[str, ValueColumn] = {c.name: c for c in layout.columns}
        self.converters: dict[str, Convert] = {c.name: convert(c, c.type) for c in layout.columns}
        self.serializers: dict[str, Serialize] = {
            c.name: serializer_for(c.type) for c in layout.columns if c.storage == "simple"
        }
        multi = [c for c in layout.columns if c.storage == "elements"]
        self.element_keys = {c.name: element_key_encoder(c.type) for c in multi}
        self.element_orders = {c.name: element_order(c.type) for c in multi}

    def _key(self, values: Mapping[str, Any], columns: Iterable[Any], offset: int) -> tuple[Any, ...]:
        converters = self.key_converters
        return tuple(converters[offset + i](values[c.name]) for i, c in enumerate(columns))

    def fold(self, batch: TableBatch, event: ChangeEvent) -> None:  # noqa: PLR0912, PLR0915 - one branch per event part, inlined: the hot path
        batch.events += 1
        layout = self.layout
        pk = self._key(event.partition_key, layout.partition_key, 0)
        op = event.operation
        if op is Operation.DELETE_PARTITION:
            assert event.deletion is not None
            batch.partitions[pk] = _max(batch.partitions.get(pk), event.deletion.timestamp)
            batch.max_timestamp = max(batch.max_timestamp, event.deletion.timestamp)
            return
        if op is Operation.DELETE_RANGE:
            assert event.deletion is not None
            assert event.range_start is not None
            assert event.range_end is not None
            start = self.clustering_key.start(event.range_start.values, event.range_start.inclusive)
            end = self.clustering_key.end(event.range_end.values, event.range_end.inclusive)
            key = (*pk, start, end)
            seen = batch.ranges.get(key)
            stamp = event.deletion.timestamp
            if seen is None or stamp > seen.deletion:
                batch.ranges[key] = RangeState(start, end, stamp)
            batch.max_timestamp = max(batch.max_timestamp, stamp)
            return
        if event.static:
            row = batch.statics.get(pk)
            if row is None:
                row = batch.statics[pk] = RowState()
        else:
            values = event.clustering
            clustering = [values[c.name] for c in layout.clustering]
            key = (*pk, self.clustering_key.row(clustering))
            row = batch.rows.get(key)
            if row is None:
                key_converters = self.key_converters
                width = self.pk_width
                converted = tuple(key_converters[width + i](v) for i, v in enumerate(clustering))
                row = batch.rows[key] = RowState(converted)
        top = 0
        if event.deletion is not None:
            row.deletion = _max(row.deletion, event.deletion.timestamp)
            top = event.deletion.timestamp
        liveness = event.liveness
        if liveness is not None:
            top = max(top, liveness.timestamp)
            mine = Register(liveness.timestamp, True, liveness.expires_at, b"")
            if row.live is None or mine.beats(Register(row.live, True, row.live_expires, b"")):
                row.live, row.live_expires = liveness.timestamp, liveness.expires_at
        converters = self.converters
        serializers = self.serializers
        for name, cell in event.cells.items():
            top = max(top, cell.timestamp)
            column = self.columns.get(name)
            if column is not None and column.storage == "counter":
                if cell.deleted:
                    row.counter_deletions[name] = _max(row.counter_deletions.get(name), cell.timestamp)
                    continue
                row.counter_times[name] = _max(row.counter_times.get(name), cell.timestamp)
                shards = row.counters.setdefault(name, {})
                for shard in cell.value or ():
                    ident = str(shard.counter_id)
                    seen_shard = shards.get(ident)
                    if seen_shard is None or (shard.clock, shard.value) > seen_shard:
                        shards[ident] = (shard.clock, shard.value)
                continue
            convert = converters.get(name)
            if cell.deleted or convert is None:
                new = Register(cell.timestamp, None, None)
            else:
                expires = cell.local_deletion_time if cell.ttl is not None else None
                new = Register(cell.timestamp, convert(cell.value), expires, serializers[name](cell.value))
            old = row.cells.get(name)
            if old is None or new.beats(old):
                row.cells[name] = new
        for name, complex_column in event.complex.items():
            column = self.columns.get(name)
            kind = column.type.kind if column is not None else "list"
            element_key = self.element_keys.get(name)
            element_bytes = self.element_orders.get(name)
            elements = row.elements.get(name)
            if elements is None:
                elements = row.elements[name] = Elements()
            if complex_column.deletion is not None:
                elements.deletion = _max(elements.deletion, complex_column.deletion.timestamp)
                top = max(top, complex_column.deletion.timestamp)
            if element_key is None or element_bytes is None:
                continue  # a column the layout does not know (dropped before our schema knew it)
            for cell in complex_column.cells:
                top = max(top, cell.timestamp)
                ekey = element_key(cell.path)
                if cell.deleted:
                    new = Register(cell.timestamp, None, None)
                else:
                    expires = cell.local_deletion_time if cell.ttl is not None else None
                    value = element_value(kind, cell.path, cell.value)
                    new = Register(cell.timestamp, value, expires, element_bytes(cell.path, cell.value))
                old = elements.cells.get(ekey)
                if old is None or new.beats(old):
                    elements.cells[ekey] = new
        batch.max_timestamp = max(batch.max_timestamp, top)
