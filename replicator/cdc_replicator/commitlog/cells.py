"""``Cell.Serializer``: one cell of a row, simple or an element of a multi-cell column.

    cell := u8 flags | timestamp? | local deletion time? | ttl? | path? | value?

Flags say what is absent: the row's timestamp and TTL stand in when ``USE_ROW_TIMESTAMP`` /
``USE_ROW_TTL`` are set, and an empty value has no bytes. A path (``CellPath``) is the list
element's timeuuid, the set element, the map key or the UDT field name.
"""

from __future__ import annotations

from cdc_replicator.commitlog.header import Header
from cdc_replicator.cql.vint import read_uvint, read_uvint32
from cdc_replicator.events import Cell
from cdc_replicator.schema.model import ColumnDef

# Cell flags (Cell.Serializer)
CELL_DELETED = 0x01
CELL_EXPIRING = 0x02
CELL_EMPTY_VALUE = 0x04
CELL_USE_ROW_TIMESTAMP = 0x08
CELL_USE_ROW_TTL = 0x10


def read_cell(  # noqa: PLR0912, PLR0915, PLR0917 - one flat pass over the cell format
    buf: bytes,
    pos: int,
    header: Header,
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
