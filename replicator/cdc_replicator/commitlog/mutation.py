"""Decoding a serialized ``Mutation`` into change events.

Layout (messaging format, ``Mutation.MutationSerializer``, ``PartitionUpdate``,
``UnfilteredRowIteratorSerializer``, ``UnfilteredSerializer``, ``Cell.Serializer``)::

    mutation   := uvint32 count, PartitionUpdate * count
    update     := table_id(16) | uvint len + partition key | u8 flags
                  [EncodingStats | static Columns? | regular Columns
                   | partition deletion? | static row? | uvint row estimate?
                   | Unfiltered* | 0x01]

All timestamps, local deletion times and TTLs are deltas from the EncodingStats minima,
written with Java's wrapping arithmetic; they are undone here the same way.

The decoder works on ``bytes`` with an explicit offset threaded through plain functions:
no per-byte loops, no intermediate objects other than the events themselves.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from cdc_replicator.commitlog.errors import MutationDecodeError, UnknownTableError
from cdc_replicator.commitlog.segment import Entry
from cdc_replicator.cql.vint import checked_int32, read_uvint, read_uvint32, to_int32, to_int64
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
from cdc_replicator.schema.registry import SchemaRegistry

# EncodingStats epochs: 2015-09-22 00:00 GMT, in µs and in s.
TIMESTAMP_EPOCH = 1_442_880_000_000_000
DELETION_TIME_EPOCH = 1_442_880_000

# Partition flags (UnfilteredRowIteratorSerializer)
IS_EMPTY = 0x01
IS_REVERSED = 0x02
HAS_PARTITION_DELETION = 0x04
HAS_STATIC_ROW = 0x08
HAS_ROW_ESTIMATE = 0x10
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
# Cell flags (Cell.Serializer)
CELL_DELETED = 0x01
CELL_EXPIRING = 0x02
CELL_EMPTY_VALUE = 0x04
CELL_USE_ROW_TIMESTAMP = 0x08
CELL_USE_ROW_TTL = 0x10

LONG_MIN = -(1 << 63)
LONG_MAX = (1 << 63) - 1
NO_DELETION_TIME = LONG_MAX
INVALID_DELETION_TIME = 0xFFFF_FFFF - 1  # Cell.INVALID_DELETION_TIME
MESSAGING_50 = 13

# ClusteringPrefix.Kind ordinals -> (is start, inclusive) for bounds; boundaries separately.
EXCL_END_BOUND, INCL_START_BOUND, EXCL_END_INCL_START_BOUNDARY = 0, 1, 2
INCL_END_EXCL_START_BOUNDARY, INCL_END_BOUND, EXCL_START_BOUND = 5, 6, 7

_U32 = 1 << 32
_USHORT = struct.Struct(">H")

TableFilter = Callable[[TableSchema], bool]


class _Header:
    """The EncodingStats and column lists of one partition update."""

    __slots__ = ("min_ldt", "min_ts", "min_ttl", "regulars", "statics", "version")

    def __init__(self, min_ts: int, min_ldt: int, min_ttl: int, version: int) -> None:
        self.min_ts = min_ts
        self.min_ldt = min_ldt
        self.min_ttl = min_ttl
        self.version = version
        self.statics: tuple[ColumnDef, ...] = ()
        self.regulars: tuple[ColumnDef, ...] = ()

    def timestamp(self, buf: bytes, pos: int) -> tuple[int, int]:
        delta, pos = read_uvint(buf, pos)
        value = delta + self.min_ts
        if not LONG_MIN <= value <= LONG_MAX:
            value = to_int64(value)
        return value, pos

    def ldt(self, buf: bytes, pos: int) -> tuple[int, int]:
        delta, pos = read_uvint32(buf, pos)
        return delta + self.min_ldt, pos

    def ttl(self, buf: bytes, pos: int) -> tuple[int, int]:
        delta, pos = read_uvint32(buf, pos)
        return to_int32(delta + self.min_ttl), pos

    def deletion(self, buf: bytes, pos: int) -> tuple[Deletion | None, int]:
        """A DeletionTime; None for ``DeletionTime.LIVE`` (written when another column needs one)."""
        ts, pos = self.timestamp(buf, pos)
        ldt, pos = self.ldt(buf, pos)
        if ts == LONG_MIN:
            return None, pos
        return Deletion(ts, self.decode_ldt(ldt, 0)), pos

    def decode_ldt(self, ldt: int, ttl: int) -> int:
        """``Cell.decodeLocalDeletionTime``: negative = overflowed int (unsigned since messaging 13)."""
        if ldt >= ttl:
            return ldt
        if ldt < 0:
            if self.version < MESSAGING_50:
                return INVALID_DELETION_TIME
            unsigned = ldt % _U32
            return NO_DELETION_TIME if unsigned == 0xFFFF_FFFF else unsigned
        return ldt if ttl == 0x7FFF_FFFF else INVALID_DELETION_TIME


class MutationDecoder:
    """Turns entries into change events for the tables ``include`` accepts.

    Partition updates of other tables are skipped: without decoding values, and not parsed
    at all when nothing the filter accepts follows them (a mutation is one keyspace, so the
    first table id decides for the whole mutation when the filter rejects the keyspace).
    """

    def __init__(
        self,
        schema: SchemaRegistry,
        include: TableFilter | None = None,
        include_keyspace: Callable[[str], bool] | None = None,
    ) -> None:
        self.schema = schema
        self.include = include or (lambda _t: True)
        self.include_keyspace = include_keyspace or (lambda _k: True)
        self.skipped_updates = 0
        self.skipped_mutations = 0

    def decode(self, entry: Entry, messaging_version: int) -> list[ChangeEvent]:
        """Events of one entry. Raises ``UnknownTableError`` or ``MutationDecodeError``."""
        buf = entry.data
        position = Position(entry.segment_id, entry.position)
        try:
            return self._decode(buf, position, messaging_version, entry.durable)
        except (UnknownTableError, MutationDecodeError):
            raise
        except (IndexError, ValueError, KeyError, struct.error, UnicodeDecodeError) as exc:
            raise MutationDecodeError(
                f"segment {entry.segment_id}", entry.start, f"mutation does not decode: {exc!r}"
            ) from exc

    def peek_table(self, entry: Entry) -> TableSchema | None:
        """The table of the first partition update (all updates share its keyspace)."""
        _, pos = read_uvint(entry.data, 0)
        return self.schema.table(entry.data[pos : pos + 16])

    def _decode(self, buf: bytes, position: Position, version: int, durable: bool) -> list[ChangeEvent]:
        count, pos = read_uvint(buf, 0)
        events: list[ChangeEvent] = []
        for index in range(count):
            table_id = buf[pos : pos + 16]
            table = self.schema.table(table_id)
            if table is None:
                raise UnknownTableError(uuid.UUID(bytes=bytes(table_id)))
            if index == 0 and not self.include_keyspace(table.keyspace):
                self.skipped_mutations += 1
                return events
            wanted = self.include(table)
            if not wanted:
                self.skipped_updates += 1
                if index == count - 1:
                    break
            pos = self._partition(buf, pos + 16, table, version, wanted, position, durable, events)
        return events

    # -- partition update ----------------------------------------------------------------

    def _partition(  # noqa: PLR0917
        self,
        buf: bytes,
        pos: int,
        table: TableSchema,
        version: int,
        wanted: bool,
        position: Position,
        durable: bool,
        events: list[ChangeEvent],
    ) -> int:
        key_len, pos = read_uvint(buf, pos)
        key = buf[pos : pos + key_len]
        pos += key_len
        flags = buf[pos]
        pos += 1
        if flags & IS_EMPTY:
            return pos
        min_ts, pos = read_uvint(buf, pos)
        min_ldt, pos = read_uvint(buf, pos)
        min_ttl, pos = read_uvint(buf, pos)
        header = _Header(
            to_int64(min_ts + TIMESTAMP_EPOCH),
            # (int) + (int): Java int arithmetic, then widened to long.
            to_int32(checked_int32(min_ldt) + DELETION_TIME_EPOCH),
            checked_int32(min_ttl),
            version,
        )
        if flags & HAS_STATIC_ROW:
            header.statics, pos = self._columns(buf, pos, table)
        header.regulars, pos = self._columns(buf, pos, table)

        emit = _Emitter(table, key, position, durable, events) if wanted else None
        if flags & HAS_PARTITION_DELETION:
            deletion, pos = header.deletion(buf, pos)
            if emit is not None and deletion is not None:
                emit.event(Operation.DELETE_PARTITION, deletion=deletion)
        if flags & HAS_STATIC_ROW:
            row_flags = buf[pos]
            extended = buf[pos + 1]
            pos = _row(buf, pos + 2, row_flags, extended, header, header.statics, (), emit, table)
        if flags & HAS_ROW_ESTIMATE:
            _, pos = read_uvint(buf, pos)
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
                pos = _marker(buf, pos, header, clustering_columns, emit)
                continue
            if extended & IS_STATIC:
                raise ValueError("static flag on a row after the static row")
            values, pos = _clustering(buf, pos, clustering_columns, len(clustering_columns), emit is not None)
            pos = _row(buf, pos, row_flags, extended, header, header.regulars, values, emit, table)

    def _columns(self, buf: bytes, pos: int, table: TableSchema) -> tuple[tuple[ColumnDef, ...], int]:
        """A serialized ``Columns``: ``uvint32 n`` then n names, each ``uvint len + bytes``."""
        start = pos
        count, pos = read_uvint(buf, pos)
        for _ in range(count):
            length, pos = read_uvint(buf, pos)
            pos += length
        raw = buf[start:pos]
        cached = table.header_cache.get(raw)
        if cached is not None:
            return cached, pos
        names = []
        cursor = start
        _, cursor = read_uvint(buf, cursor)
        for _ in range(count):
            length, cursor = read_uvint(buf, cursor)
            names.append(bytes(buf[cursor : cursor + length]))
            cursor += length
        columns = []
        for name in names:
            column = self.schema.column(table, name)
            if column is None:
                raise ValueError(f"unknown column {name.decode('utf-8', 'replace')!r} in {table.qualified_name}")
            columns.append(column)
        result = tuple(columns)
        table.header_cache[raw] = result
        return result, pos


class _Emitter:
    """Builds events for one partition update."""

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


def _marker(buf: bytes, pos: int, header: _Header, columns: tuple[ColumnDef, ...], emit: _Emitter | None) -> int:
    """A range tombstone marker: ``kind | uint16 size | prefix | deletion (or end, start for boundaries)``."""
    kind = buf[pos]
    (size,) = _USHORT.unpack_from(buf, pos + 1)
    values, pos = _clustering(buf, pos + 3, columns, size, emit is not None)
    first, pos = header.deletion(buf, pos)
    second = None
    if kind in (EXCL_END_INCL_START_BOUNDARY, INCL_END_EXCL_START_BOUNDARY):
        second, pos = header.deletion(buf, pos)
    if emit is not None:
        emit.marker(kind, values, first, second)
    return pos


def _clustering(
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


def _row(  # noqa: PLR0912, PLR0915, PLR0917 - one flat pass over the row format
    buf: bytes,
    pos: int,
    flags: int,
    extended: int,
    header: _Header,
    header_columns: tuple[ColumnDef, ...],
    clustering: tuple[Any, ...],
    emit: _Emitter | None,
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
        columns, pos = _subset(buf, pos, header_columns)
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
            cell, pos = _cell(buf, pos, header, column, row_ts, row_ttl, row_ldt, False, decode)
            if cell is not None and (dropped_at is None or cell.timestamp > dropped_at):
                cells[column.name] = cell
            continue
        complex_deletion = None
        if has_complex_deletion:
            complex_deletion, pos = header.deletion(buf, pos)
        count, pos = read_uvint(buf, pos)
        elements = []
        for _ in range(count):
            cell, pos = _cell(buf, pos, header, column, row_ts, row_ttl, row_ldt, True, decode)
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


def _subset(buf: bytes, pos: int, superset: tuple[ColumnDef, ...]) -> tuple[tuple[ColumnDef, ...], int]:
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


def _cell(  # noqa: PLR0912, PLR0915, PLR0917 - one flat pass over the cell format
    buf: bytes,
    pos: int,
    header: _Header,
    column: ColumnDef,
    row_ts: int,
    row_ttl: int,
    row_ldt: int,
    complex_cell: bool,
    decode: bool,
) -> tuple[Cell | None, int]:
    flags = buf[pos]
    pos += 1
    if flags == CELL_USE_ROW_TIMESTAMP and not complex_cell:
        # The common case (a value written by INSERT/UPDATE with the row's timestamp): no
        # timestamp, TTL or path to read, just the value.
        width = column.width
        if width is None:
            length = buf[pos]
            if length < 0x80:
                pos += 1
            else:
                length, pos = read_uvint32(buf, pos)
        else:
            length = width
        end = pos + length
        if not decode:
            return None, end
        return Cell(column.decode(buf[pos:end]), row_ts), end
    if flags & CELL_USE_ROW_TIMESTAMP:
        timestamp = row_ts
    else:
        timestamp, pos = header.timestamp(buf, pos)
    deleted = flags & CELL_DELETED
    expiring = flags & CELL_EXPIRING
    ttl = 0
    ldt: int | None = None
    if flags & CELL_USE_ROW_TTL:
        ttl, ldt = row_ttl, row_ldt
    else:
        if deleted or expiring:
            ldt, pos = header.ldt(buf, pos)
        if expiring:
            ttl, pos = header.ttl(buf, pos)
        if ldt is not None:
            ldt = header.decode_ldt(ldt, ttl)
    path = None
    if complex_cell:
        length = buf[pos]
        if length < 0x80:
            pos += 1
        else:
            length, pos = read_uvint(buf, pos)
        path = buf[pos : pos + length]
        pos += length
    raw = b""
    if not flags & CELL_EMPTY_VALUE:
        width = None if complex_cell else column.width
        if width is None:
            length = buf[pos]
            if length < 0x80:
                pos += 1
            else:
                length, pos = read_uvint32(buf, pos)
        else:
            length = width
        raw = buf[pos : pos + length]
        pos += length
    if not decode:
        return None, pos
    if complex_cell:
        assert path is not None
        key = column.decode_path(path)
        value = None if deleted else column.decode_element(path, raw)
        return Cell(value, timestamp, ttl or None, ldt, bool(deleted), key), pos
    value = None if deleted else column.decode(raw)
    return Cell(value, timestamp, ttl or None, ldt, bool(deleted)), pos


__all__ = ["MutationDecoder"]
