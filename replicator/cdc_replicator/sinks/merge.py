"""Folding a batch of change events into per-key states, with Cassandra's reconciliation rules.

A destination merge statement can touch each key only once, so a batch is first folded here:
every event becomes last-writer-wins registers (per cell, per collection element, per row
marker) and maxima (row, range and partition deletion times). Folding is idempotent,
commutative and associative, and the destinations merge the folded states with the very same
rules, so the outcome never depends on batching, duplicates or order.

Ties at equal write timestamps follow ``Cells.resolveRegular`` (Cassandra 5.0): a tombstone
beats an expiring cell, which beats a live one; of two expiring cells the later expiry wins;
of two live cells the greater value wins. Cassandra compares serialized bytes there; we
compare the destination values (identical for text, blobs and non-negative numbers, and
only ever consulted when two different values carry the same microsecond timestamp).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cdc_replicator.cql.jsonmap import to_json
from cdc_replicator.events import ChangeEvent, Operation
from cdc_replicator.sinks.layout import TableLayout, ValueColumn

Convert = Callable[[Any], Any]
TOMBSTONE, EXPIRING, LIVE = 3, 2, 1


def rank(value: Any, expires: int | None) -> int:
    """Cassandra's precedence at equal timestamps: tombstone > expiring > live."""
    if value is None:
        return TOMBSTONE
    return EXPIRING if expires is not None else LIVE


def _greater(a: Any, b: Any) -> bool:
    try:
        return bool(a > b)
    except TypeError:
        return repr(a) > repr(b)


@dataclass(slots=True)
class Register:
    """One cell: ``value`` None means a tombstone (Cassandra shows a deleted and a null cell alike)."""

    timestamp: int
    value: Any
    expires: int | None

    def beats(self, other: Register) -> bool:
        if self.timestamp != other.timestamp:
            return self.timestamp > other.timestamp
        mine, theirs = rank(self.value, self.expires), rank(other.value, other.expires)
        if mine != theirs:
            return mine > theirs
        if mine == EXPIRING:
            assert self.expires is not None
            assert other.expires is not None
            if self.expires != other.expires:
                return self.expires > other.expires
        if mine == TOMBSTONE:
            return False
        return _greater(self.value, other.value)


@dataclass(slots=True)
class Elements:
    """A multi-cell column: the column's deletion time and a register per element key."""

    deletion: int | None = None
    cells: dict[str, Register] = field(default_factory=dict)

    def to_json(self) -> str:
        """``{key: [timestamp, value, expires]}``: the form the destinations merge."""
        return json.dumps(
            {k: [r.timestamp, r.value, r.expires] for k, r in self.cells.items()},
            ensure_ascii=False,
            separators=(",", ":"),
        )


@dataclass(slots=True)
class RowState:
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
    start: tuple[Any, ...]
    start_inclusive: bool
    end: tuple[Any, ...]
    end_inclusive: bool
    deletion: int


@dataclass(slots=True)
class TableBatch:
    """Everything one batch does to one table, folded by key."""

    layout: TableLayout
    rows: dict[tuple[Any, ...], RowState] = field(default_factory=dict)
    statics: dict[tuple[Any, ...], RowState] = field(default_factory=dict)
    partitions: dict[tuple[Any, ...], int] = field(default_factory=dict)
    ranges: dict[tuple[Any, ...], RangeState] = field(default_factory=dict)
    """Keyed by partition key + (bound id,)."""
    events: int = 0
    max_timestamp: int = 0


def _max(a: int | None, b: int) -> int:
    return b if a is None or b > a else a


def _sortable(value: Any) -> str:
    """An element key whose ``COLLATE "C"`` order is Cassandra's for ints and text."""
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int) and -(1 << 63) <= value < (1 << 63):
        return f"{value + (1 << 63):016x}"
    if isinstance(value, str):
        return value
    return json.dumps(to_json(value), ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def element_key(kind: str, path: Any) -> str:
    if kind == "list":
        # List cells are keyed by timeuuids and ordered by their time, then bytes.
        return f"{path.time:016x}{path.bytes.hex()}"
    if kind == "udt":
        return str(path)
    return _sortable(path)


def element_value(kind: str, path: Any, value: Any) -> Any:
    if kind == "set":
        return to_json(path)
    if kind == "map":
        return [to_json(path), to_json(value)]
    return to_json(value)


class Folder:
    """Folds events of one table into a ``TableBatch`` with the destination's value converters."""

    def __init__(self, layout: TableLayout, convert: Callable[[ValueColumn | None, Any], Convert]) -> None:
        self.layout = layout
        self.key_converters = [convert(None, k.type) for k in layout.key_columns]
        self.pk_width = len(layout.partition_key)
        self.columns: dict[str, ValueColumn] = {c.name: c for c in layout.columns}
        self.converters: dict[str, Convert] = {c.name: convert(c, c.type) for c in layout.columns}

    def _key(self, values: Mapping[str, Any], columns: Iterable[Any], offset: int) -> tuple[Any, ...]:
        converters = self.key_converters
        return tuple(converters[offset + i](values[c.name]) for i, c in enumerate(columns))

    def _bound(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        converters = self.key_converters
        return tuple(converters[self.pk_width + i](v) for i, v in enumerate(values))

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
            start, end = self._bound(event.range_start.values), self._bound(event.range_end.values)
            ident = json.dumps(
                [to_json(start), event.range_start.inclusive, to_json(end), event.range_end.inclusive],
                separators=(",", ":"),
            )
            bound_id = hashlib.md5(ident.encode(), usedforsecurity=False).hexdigest()
            key = (*pk, bound_id)
            seen = batch.ranges.get(key)
            stamp = event.deletion.timestamp
            if seen is None or stamp > seen.deletion:
                batch.ranges[key] = RangeState(
                    start, event.range_start.inclusive, end, event.range_end.inclusive, stamp
                )
            batch.max_timestamp = max(batch.max_timestamp, stamp)
            return
        if event.static:
            row = batch.statics.get(pk)
            if row is None:
                row = batch.statics[pk] = RowState()
        else:
            key = pk + self._key(event.clustering, layout.clustering, self.pk_width)
            row = batch.rows.get(key)
            if row is None:
                row = batch.rows[key] = RowState()
        top = 0
        if event.deletion is not None:
            row.deletion = _max(row.deletion, event.deletion.timestamp)
            top = event.deletion.timestamp
        liveness = event.liveness
        if liveness is not None:
            top = max(top, liveness.timestamp)
            mine = Register(liveness.timestamp, True, liveness.expires_at)
            if row.live is None or mine.beats(Register(row.live, True, row.live_expires)):
                row.live, row.live_expires = liveness.timestamp, liveness.expires_at
        converters = self.converters
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
            value = None if cell.deleted or convert is None else convert(cell.value)
            expires = cell.local_deletion_time if cell.ttl is not None and not cell.deleted else None
            new = Register(cell.timestamp, value, expires)
            old = row.cells.get(name)
            if old is None or new.beats(old):
                row.cells[name] = new
        for name, complex_column in event.complex.items():
            column = self.columns.get(name)
            kind = column.type.kind if column is not None else "list"
            elements = row.elements.get(name)
            if elements is None:
                elements = row.elements[name] = Elements()
            if complex_column.deletion is not None:
                elements.deletion = _max(elements.deletion, complex_column.deletion.timestamp)
                top = max(top, complex_column.deletion.timestamp)
            for cell in complex_column.cells:
                top = max(top, cell.timestamp)
                ekey = element_key(kind, cell.path)
                value = None if cell.deleted else element_value(kind, cell.path, cell.value)
                expires = cell.local_deletion_time if cell.ttl is not None and not cell.deleted else None
                new = Register(cell.timestamp, value, expires)
                old = elements.cells.get(ekey)
                if old is None or new.beats(old):
                    elements.cells[ekey] = new
        batch.max_timestamp = max(batch.max_timestamp, top)
