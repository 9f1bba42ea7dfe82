"""An in-memory Cassandra table fed by change events, applying Cassandra's merge rules.

Per cell, the highest write timestamp wins; a deletion at timestamp T (partition, range,
row, collection) hides every cell written at or before T. ``rows()`` renders what
``SELECT *`` returns: values normalized with ``normalize`` so both sides compare equal.
Workloads use unique timestamps, so Cassandra's tie-breaking rules never come into play.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from cdc_replicator.cql.types import CqlType
from cdc_replicator.cql.values import CounterValue, CqlMap, UdtValue
from cdc_replicator.events import Bound, Cell, ChangeEvent, Operation
from cdc_replicator.schema.model import TableSchema

NEVER = -(1 << 63)
_EPOCH = datetime.datetime(1970, 1, 1)


@dataclass
class _Row:
    liveness: int = NEVER
    deletion: int = NEVER
    cells: dict[str, Cell] = field(default_factory=dict)
    complex_deletion: dict[str, int] = field(default_factory=dict)
    elements: dict[str, dict[Any, Cell]] = field(default_factory=dict)
    counters: dict[str, list[CounterValue]] = field(default_factory=dict)


@dataclass
class _Partition:
    deletion: int = NEVER
    static: _Row = field(default_factory=_Row)
    rows: dict[tuple[Any, ...], _Row] = field(default_factory=dict)
    ranges: list[tuple[Bound, Bound, int]] = field(default_factory=list)


def _cmp(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


class TableModel:
    def __init__(self, table: TableSchema) -> None:
        self.table = table
        self.partitions: dict[tuple[Any, ...], _Partition] = {}
        self.descending = [c.reversed for c in table.clustering]

    # -- applying events -----------------------------------------------------------------

    def apply(self, event: ChangeEvent) -> None:
        key = tuple(event.partition_key[c.name] for c in self.table.partition_key)
        partition = self.partitions.setdefault(key, _Partition())
        if event.operation is Operation.DELETE_PARTITION:
            assert event.deletion is not None
            partition.deletion = max(partition.deletion, event.deletion.timestamp)
            return
        if event.operation is Operation.DELETE_RANGE:
            assert event.deletion is not None
            assert event.range_start is not None
            assert event.range_end is not None
            partition.ranges.append((event.range_start, event.range_end, event.deletion.timestamp))
            return
        if event.static:
            row = partition.static
        else:
            clustering = tuple(event.clustering[c.name] for c in self.table.clustering)
            row = partition.rows.setdefault(clustering, _Row())
        if event.deletion is not None:
            row.deletion = max(row.deletion, event.deletion.timestamp)
        if event.liveness is not None:
            row.liveness = max(row.liveness, event.liveness.timestamp)
        for name, cell in event.cells.items():
            if isinstance(cell.value, CounterValue):
                row.counters.setdefault(name, []).append(cell.value)
                continue
            current = row.cells.get(name)
            if current is None or cell.timestamp > current.timestamp:
                row.cells[name] = cell
        for name, column in event.complex.items():
            if column.deletion is not None:
                row.complex_deletion[name] = max(row.complex_deletion.get(name, NEVER), column.deletion.timestamp)
            elements = row.elements.setdefault(name, {})
            for cell in column.cells:
                current = elements.get(cell.path)
                if current is None or cell.timestamp > current.timestamp:
                    elements[cell.path] = cell

    # -- rendering -----------------------------------------------------------------------

    def _compare(self, values: tuple[Any, ...], bound: tuple[Any, ...]) -> int:
        for value, limit, desc in zip(values, bound, self.descending, strict=False):
            result = _cmp(value, limit)
            if result:
                return -result if desc else result
        return 0

    def _range_deletion(self, partition: _Partition, clustering: tuple[Any, ...]) -> int:
        deleted = NEVER
        for start, end, timestamp in partition.ranges:
            after_start = self._compare(clustering, start.values)
            before_end = self._compare(clustering, end.values)
            inside = (after_start > 0 or (after_start == 0 and start.inclusive)) and (
                before_end < 0 or (before_end == 0 and end.inclusive)
            )
            if inside:
                deleted = max(deleted, timestamp)
        return deleted

    def _columns(self, row: _Row, hidden_before: int, static: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, column in self.table.columns.items():
            if not column.current:
                continue
            if column.is_static != static:
                continue
            column_name = name.decode()
            if column.type.kind == "counter":
                values = row.counters.get(column_name)
                out[column_name] = CounterValue.merge_total(values) if values else None
                continue
            if column.type.multi_cell:
                floor = max(hidden_before, row.complex_deletion.get(column_name, NEVER))
                live = {
                    path: c
                    for path, c in row.elements.get(column_name, {}).items()
                    if c.timestamp > floor and not c.deleted
                }
                out[column_name] = _assemble(column.type, live) if live else None
                continue
            cell = row.cells.get(column_name)
            visible = cell is not None and cell.timestamp > hidden_before and not cell.deleted
            out[column_name] = cell.value if visible and cell is not None else None
        return out

    def rows(self) -> dict[tuple[Any, ...], dict[str, Any]]:
        """``SELECT *`` as ``{(partition key..., clustering...): {column: value}}``."""
        out: dict[tuple[Any, ...], dict[str, Any]] = {}
        width = len(self.table.clustering)
        for key, partition in self.partitions.items():
            static = self._columns(partition.static, partition.deletion, static=True)
            has_static = any(v is not None for v in static.values())
            emitted = False
            for clustering, row in partition.rows.items():
                hidden = max(partition.deletion, row.deletion, self._range_deletion(partition, clustering))
                columns = self._columns(row, hidden, static=False)
                alive = row.liveness > hidden or any(v is not None for v in columns.values())
                if alive:
                    out[key + clustering] = {**columns, **static}
                    emitted = True
            if not emitted and has_static:
                empty = {name.decode(): None for name, c in self.table.columns.items() if not c.is_static}
                out[key + (None,) * width] = {**empty, **static}
        return out


def _assemble(cql_type: CqlType, live: dict[Any, Cell]) -> Any:
    if cql_type.kind == "list":
        # List cells are keyed by timeuuids, ordered by their time (then bytes).
        return tuple(live[path].value for path in sorted(live, key=lambda u: (u.time, u.bytes)))
    if cql_type.kind == "set":
        return tuple(sorted(live))
    if cql_type.kind == "map":
        return CqlMap((k, live[k].value) for k in sorted(live))
    if cql_type.kind == "udt":
        return UdtValue((name, live[name].value if name in live else None) for name in cql_type.fields)
    raise AssertionError(cql_type)


def normalize(value: Any, cql_type: CqlType) -> Any:
    """A value as returned by cassandra-driver, in the form the decoder produces."""
    if value is None:
        return None
    kind = cql_type.kind
    if kind in ("list", "vector"):
        return tuple(normalize(v, cql_type.params[0]) for v in value)
    if kind == "set":
        return tuple(normalize(v, cql_type.params[0]) for v in value)
    if kind == "map":
        key_type, value_type = cql_type.params
        pairs = [(normalize(k, key_type), normalize(v, value_type)) for k, v in value.items()]
        return CqlMap(pairs)
    if kind == "tuple":
        return tuple(normalize(v, t) for v, t in zip(value, cql_type.params, strict=False))
    if kind == "timestamp" and isinstance(value, datetime.datetime):
        # The driver converts through a float and can be 1 µs off: round to Cassandra's ms.
        millis = round((value - _EPOCH) / datetime.timedelta(milliseconds=1))
        return _EPOCH + datetime.timedelta(milliseconds=millis)
    if kind == "udt":
        return UdtValue(
            (name, normalize(getattr(value, name, None), t))
            for name, t in zip(cql_type.fields, cql_type.params, strict=True)
        )
    return value


def select_all(session: Any, table: TableSchema) -> dict[tuple[Any, ...], dict[str, Any]]:
    from cassandra import ConsistencyLevel
    from cassandra.query import SimpleStatement

    columns = {name.decode(): c for name, c in table.columns.items() if c.current}
    keys = [c.name for c in table.partition_key + table.clustering]
    statement = SimpleStatement(
        f'SELECT * FROM "{table.keyspace}"."{table.name}"', consistency_level=ConsistencyLevel.ALL
    )
    rows = [row._asdict() for row in session.execute(statement)]
    out = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        out[key] = {name: normalize(row.get(name), c.type) for name, c in columns.items()}
    return out


def top(value: Any) -> Any:
    """Cassandra returns an empty collection column as null."""
    if isinstance(value, tuple) and not isinstance(value, UdtValue) and len(value) == 0:
        return None
    return value
