"""``UnfilteredSerializer``: the rows and range tombstone markers of a partition update.

    unfiltered := u8 flags [u8 extended flags] (row | marker)
    row        := clustering | [timestamp [ttl ldt]] | deletion? | column subset?
                  | per column: a cell, or for a multi-cell column: deletion? uvint count, cells
    marker     := u8 kind | u16 size | clustering prefix | deletion (two for a boundary)

(Sizes of the row and of the previous one are written for sstables only, not in mutations.)

``Emitter`` turns what is read into change events for one partition update, pairing range
tombstone markers into ranges. The row loop is the decoder's hot path: it reads a live cell
with the row's timestamp inline (one-byte lengths too) and calls ``cells.read_cell`` for
anything else. Sources: ``db/rows/UnfilteredSerializer.java``, ``db/ClusteringPrefix.java``,
``db/Columns.java`` (column subsets).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from cdc_replicator.commitlog.cells import CELL_USE_ROW_TIMESTAMP, read_cell
from cdc_replicator.commitlog.header import LONG_MIN, NO_DELETION_TIME, Header
from cdc_replicator.cql.vint import checked_int32, read_uvint, read_uvint32
from cdc_replicator.events import (
    EMPTY,
    Bound,
    Cell,
    ChangeEvent,
    ComplexColumn,
    Deletion,
    Liveness,
    Operation,
    Position,
)
from cdc_replicator.schema.model import ColumnDef, TableSchema

# Unfiltered flags (UnfilteredSerializer)
END_OF_PARTITION = 0x01
IS_MARKER = 0x02
HAS_TIMESTAMP = 0x04
HAS_TTL = 0x08
HAS_DELETION = 0x10
HAS_ALL_COLUMNS = 0x20
HAS_COMPLEX_DELETION = 0x40
EXTENSION_FLAG = 0x80
IS_STATIC = 0x01  # extended flags

# ClusteringPrefix.Kind ordinals -> (is start, inclusive) for bounds; boundaries separately.
EXCL_END_BOUND, INCL_START_BOUND, EXCL_END_INCL_START_BOUNDARY = 0, 1, 2
INCL_END_EXCL_START_BOUNDARY, INCL_END_BOUND, EXCL_START_BOUND = 5, 6, 7

_USHORT = struct.Struct(">H")


class Emitter:
    """The events of one partition update, built as its rows and markers are read."""

    __slots__ = ("durable", "events", "key", "open_start", "position", "raw_key", "table")

    def __init__(
        self, table: TableSchema, raw_key: bytes, position: Position, durable: bool, events: list[ChangeEvent]
    ) -> None:
        self.table = table
        self.raw_key = raw_key
        self.key: Any = None
        self.position = position
        self.durable = durable
        self.events = events
        # The start of the range tombstone opened by the last marker, if any.
        self.open_start: Bound | None = None

    def row(  # noqa: PLR0917 - the hot path: one call per row, positional
        self,
        operation: Operation,
        clustering: Mapping[str, Any],
        static: bool,
        liveness: Liveness | None,
        deletion: Deletion | None,
        cells: Mapping[str, Cell],
        complex_columns: Mapping[str, ComplexColumn],
    ) -> None:
        if self.key is None:
            self.key = MappingProxyType(self.table.decode_partition_key(self.raw_key))
        table = self.table
        events = self.events
        events.append(
            ChangeEvent(
                table.keyspace,
                table.name,
                table.id,
                operation,
                self.key,
                clustering,
                self.position,
                len(events),
                static,
                liveness,
                deletion,
                cells,
                complex_columns,
                None,
                None,
                self.durable,
            )
        )

    def event(self, operation: Operation, **fields: Any) -> None:
        if self.key is None:
            self.key = MappingProxyType(self.table.decode_partition_key(self.raw_key))
        table = self.table
        self.events.append(
            ChangeEvent(
                table.keyspace,
                table.name,
                table.id,
                operation,
                self.key,
                fields.pop("clustering", EMPTY),
                self.position,
                len(self.events),
                durable=self.durable,
                **fields,
            )
        )

    def marker(self, kind: int, values: tuple[Any, ...], first: Deletion | None, second: Deletion | None) -> None:
        """Pair range tombstone markers into ranges.

        A bound opens or closes a range; a boundary closes one range (``first`` is its
        deletion) and opens the next (``second``) at the same clustering prefix.
        """
        if kind in (INCL_START_BOUND, EXCL_START_BOUND):
            self.open_start = Bound(values, kind == INCL_START_BOUND)
            return
        end_inclusive = kind in (INCL_END_BOUND, INCL_END_EXCL_START_BOUNDARY)
        start = self.open_start if self.open_start is not None else Bound((), True)
        if first is not None:
            self.event(
                Operation.DELETE_RANGE, deletion=first, range_start=start, range_end=Bound(values, end_inclusive)
            )
        boundary = kind in (EXCL_END_INCL_START_BOUNDARY, INCL_END_EXCL_START_BOUNDARY)
        self.open_start = Bound(values, not end_inclusive) if boundary and second is not None else None


def read_unfiltereds(buf: bytes, pos: int, header: Header, table: TableSchema, emit: Emitter | None) -> int:
    """The rows and markers after the static row, up to ``END_OF_PARTITION``; the position after it."""
    clustering_columns = table.clustering
    while True:
        row_flags = buf[pos]
        pos += 1
        if row_flags & END_OF_PARTITION:
            return pos
        extended = 0
        if row_flags & EXTENSION_FLAG:
            extended = buf[pos]
            pos += 1
        if row_flags & IS_MARKER:
            pos = read_marker(buf, pos, header, clustering_columns, emit)
            continue
        if extended & IS_STATIC:
            raise ValueError("static flag on a row after the static row")
        values, pos = read_clustering(buf, pos, clustering_columns, len(clustering_columns), emit is not None)
        pos = read_row(buf, pos, row_flags, extended, header, header.regulars, values, emit, table)


def read_marker(buf: bytes, pos: int, header: Header, columns: tuple[ColumnDef, ...], emit: Emitter | None) -> int:
    """A range tombstone marker: ``kind | uint16 size | prefix | deletion (or end, start for boundaries)``."""
    kind = buf[pos]
    (size,) = _USHORT.unpack_from(buf, pos + 1)
    values, pos = read_clustering(buf, pos + 3, columns, size, emit is not None)
    first, pos = header.deletion(buf, pos)
    second = None
    if kind in (EXCL_END_INCL_START_BOUNDARY, INCL_END_EXCL_START_BOUNDARY):
        second, pos = header.deletion(buf, pos)
    if emit is not None:
        emit.marker(kind, values, first, second)
    return pos


def read_clustering(
    buf: bytes, pos: int, columns: tuple[ColumnDef, ...], size: int, decode: bool
) -> tuple[tuple[Any, ...], int]:
    """``ClusteringPrefix.serializeValuesWithoutSize``: per 32 values a uvint null/empty bitmap.

    Java computes the masks with ``1L << (i * 2)``, where the shift wraps at 64: for the
    second block of 32 the bit index restarts at 0, hence ``i % 32``.
    """
    values: list[Any] = []
    header = 0
    for i in range(size):
        if i % 32 == 0:
            header, pos = read_uvint(buf, pos)
        bit = (i % 32) * 2
        if header & (2 << bit):
            values.append(None)
            continue
        if header & (1 << bit):
            raw = b""
        else:
            column = columns[i]
            width = column.width
            if width is None:
                length, pos = read_uvint32(buf, pos)
            else:
                length = width
            raw = buf[pos : pos + length]
            pos += length
        if decode:
            values.append(columns[i].decode(raw))
    return tuple(values), pos


def read_row(  # noqa: PLR0912, PLR0915, PLR0917 - one flat pass over the row format
    buf: bytes,
    pos: int,
    flags: int,
    extended: int,
    header: Header,
    header_columns: tuple[ColumnDef, ...],
    clustering: tuple[Any, ...],
    emit: Emitter | None,
    table: TableSchema,
) -> int:
    liveness: Liveness | None = None
    row_ts = LONG_MIN
    row_ttl = 0
    row_ldt = NO_DELETION_TIME
    if flags & HAS_TIMESTAMP:
        row_ts, pos = header.timestamp(buf, pos)
        if flags & HAS_TTL:
            row_ttl, pos = header.ttl(buf, pos)
            row_ldt, pos = header.ldt(buf, pos)
            row_ldt = header.decode_ldt(row_ldt, row_ttl)
        liveness = Liveness(row_ts, row_ttl or None, row_ldt if flags & HAS_TTL else None)
    deletion: Deletion | None = None
    if flags & HAS_DELETION:
        deletion, pos = header.deletion(buf, pos)
    if flags & HAS_ALL_COLUMNS:
        columns = header_columns
    else:
        columns, pos = read_subset(buf, pos, header_columns)
    has_complex_deletion = flags & HAS_COMPLEX_DELETION
    decode = emit is not None
    cells: dict[str, Cell] = {}
    complex_columns: dict[str, ComplexColumn] = {}
    for column in columns:
        dropped_at = column.dropped_at
        if not column.multi_cell:
            if buf[pos] == CELL_USE_ROW_TIMESTAMP:
                # Inlined fast path of _cell: a live value with the row's timestamp.
                width = column.width
                pos += 1
                if width is None:
                    width = buf[pos]
                    if width < 0x80:
                        pos += 1
                    else:
                        width, pos = read_uvint32(buf, pos)
                end = pos + width
                if decode and (dropped_at is None or row_ts > dropped_at):
                    cells[column.name] = Cell(column.decode(buf[pos:end]), row_ts)
                pos = end
                continue
            cell, pos = read_cell(buf, pos, header, column, row_ts, row_ttl, row_ldt, False, decode)
            if cell is not None and (dropped_at is None or cell.timestamp > dropped_at):
                cells[column.name] = cell
            continue
        complex_deletion = None
        if has_complex_deletion:
            complex_deletion, pos = header.deletion(buf, pos)
        count, pos = read_uvint(buf, pos)
        elements = []
        for _ in range(count):
            cell, pos = read_cell(buf, pos, header, column, row_ts, row_ttl, row_ldt, True, decode)
            if cell is not None and (dropped_at is None or cell.timestamp > dropped_at):
                elements.append(cell)
        if dropped_at is not None and complex_deletion is not None and complex_deletion.timestamp <= dropped_at:
            complex_deletion = None
        if decode and (elements or complex_deletion is not None):
            complex_columns[column.name] = ComplexColumn(complex_deletion, tuple(elements))
    if emit is None:
        return pos
    is_static = bool(extended & IS_STATIC)
    if deletion is None and liveness is None and not cells and not complex_columns:
        return pos  # only dropped columns' data: Cassandra drops the row too
    if is_static:
        clustering_map: Any = EMPTY
    else:
        clustering_map = MappingProxyType(dict(zip(table.clustering_names, clustering, strict=False)))
    emit.row(
        Operation.DELETE_ROW if deletion is not None else Operation.UPSERT,
        clustering_map,
        is_static,
        liveness,
        deletion,
        MappingProxyType(cells) if cells else EMPTY,
        MappingProxyType(complex_columns) if complex_columns else EMPTY,
    )
    return pos


def read_subset(buf: bytes, pos: int, superset: tuple[ColumnDef, ...]) -> tuple[tuple[ColumnDef, ...], int]:
    """``Columns.Serializer.deserializeSubset`` relative to the header's columns."""
    encoded, pos = read_uvint(buf, pos)
    if encoded == 0:
        return superset, pos
    count = len(superset)
    if count < 64:
        # A bitmap of the *missing* columns.
        return tuple(c for i, c in enumerate(superset) if not (encoded >> i) & 1), pos
    delta = checked_int32(encoded)
    present = count - delta
    if present < count // 2:
        chosen = []
        for _ in range(present):
            idx, pos = read_uvint(buf, pos)
            chosen.append(superset[idx])
        return tuple(chosen), pos
    missing = set()
    for _ in range(delta):
        idx, pos = read_uvint(buf, pos)
        missing.add(idx)
    return tuple(c for i, c in enumerate(superset) if i not in missing), pos
