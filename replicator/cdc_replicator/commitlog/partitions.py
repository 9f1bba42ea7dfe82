"""``PartitionUpdate`` as a mutation carries it: the partition's header, then its unfiltereds.

    update := table id (16) | uvint len + partition key | u8 flags
              [EncodingStats | static Columns? | regular Columns
               | partition deletion? | static row? | uvint row estimate? | Unfiltered* | 0x01]

Sources: ``db/partitions/PartitionUpdate.java`` (``PartitionUpdateSerializer``),
``db/rows/UnfilteredRowIteratorSerializer.java`` (flags and header), ``db/rows/EncodingStats.java``,
``db/Columns.java`` (``Columns.Serializer``). The rows themselves are ``rows.py``'s.
"""

from __future__ import annotations

from cdc_replicator.commitlog.header import Header
from cdc_replicator.commitlog.rows import Emitter, read_row, read_unfiltereds
from cdc_replicator.cql.vint import read_uvint
from cdc_replicator.events import ChangeEvent, Operation, Position
from cdc_replicator.schema.model import ColumnDef, TableSchema
from cdc_replicator.schema.registry import SchemaRegistry

# Partition flags (UnfilteredRowIteratorSerializer)
IS_EMPTY = 0x01
IS_REVERSED = 0x02
HAS_PARTITION_DELETION = 0x04
HAS_STATIC_ROW = 0x08
HAS_ROW_ESTIMATE = 0x10


def read_partition(  # noqa: PLR0917 - one call per partition update, positional
    buf: bytes,
    pos: int,
    table: TableSchema,
    schema: SchemaRegistry,
    version: int,
    wanted: bool,
    position: Position,
    durable: bool,
    events: list[ChangeEvent],
) -> int:
    """Read the update of ``table`` starting after its table id; append its events to ``events``
    when ``wanted`` (else only skip it). Returns the position after the update."""
    key_len, pos = read_uvint(buf, pos)
    key = buf[pos : pos + key_len]
    pos += key_len
    flags = buf[pos]
    pos += 1
    if flags & IS_EMPTY:
        return pos
    header, pos = Header.read(buf, pos, version)
    if flags & HAS_STATIC_ROW:
        header.statics, pos = read_columns(buf, pos, table, schema)
    header.regulars, pos = read_columns(buf, pos, table, schema)

    emit = Emitter(table, key, position, durable, events) if wanted else None
    if flags & HAS_PARTITION_DELETION:
        deletion, pos = header.deletion(buf, pos)
        if emit is not None and deletion is not None:
            emit.event(Operation.DELETE_PARTITION, deletion=deletion)
    if flags & HAS_STATIC_ROW:
        row_flags = buf[pos]
        extended = buf[pos + 1]
        pos = read_row(buf, pos + 2, row_flags, extended, header, header.statics, (), emit, table)
    if flags & HAS_ROW_ESTIMATE:
        _, pos = read_uvint(buf, pos)
    return read_unfiltereds(buf, pos, header, table, emit)


def read_columns(buf: bytes, pos: int, table: TableSchema, schema: SchemaRegistry) -> tuple[tuple[ColumnDef, ...], int]:
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
        column = schema.column(table, name)
        if column is None:
            raise ValueError(f"unknown column {name.decode('utf-8', 'replace')!r} in {table.qualified_name}")
        columns.append(column)
    result = tuple(columns)
    table.header_cache[raw] = result
    return result, pos
