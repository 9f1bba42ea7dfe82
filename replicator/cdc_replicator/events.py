"""The change-event model: what the commitlog says happened, one event per row-level change.

Events are immutable and carry Cassandra's own write timestamps (microseconds) per cell, so
every destination can merge them last-write-wins, cell by cell, whatever order and however
often they arrive. One partition update yields, in this order: a ``delete_partition``
event, the static row, then rows and ranges in clustering order.

Mappings inside events are read-only views; values are decoded as described in
``cdc_replicator.cql.decode`` (composite values are tuples, ``CqlMap`` or ``UdtValue``).

``Position``, ``Cell``, ``Deletion`` and ``Liveness`` are ``NamedTuple``s rather than
frozen dataclasses (and positions order as tuples): one is built per entry or per cell on
the decoding hot path, and a frozen dataclass's ``__init__`` costs several times more (it
was a third of the decode time).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple


class Operation(StrEnum):
    UPSERT = "upsert"
    """A row (or the static row) written: cells, and row liveness for INSERT."""
    DELETE_ROW = "delete_row"
    """A row deleted at ``deletion.timestamp``; the same event may carry newer cells."""
    DELETE_RANGE = "delete_range"
    """Rows between ``range_start`` and ``range_end`` deleted at ``deletion.timestamp``."""
    DELETE_PARTITION = "delete_partition"
    """The whole partition deleted at ``deletion.timestamp``."""


EMPTY: Mapping[str, Any] = MappingProxyType({})
_POSITION = re.compile(r"^(\d+):(\d+)$")


class Position(NamedTuple):
    """Where an entry ends in a node's commitlog: ``(segment_id, offset after the entry)``.

    Segment ids increase on a node, so positions are totally ordered per node. Resuming
    ``after`` a position yields exactly the entries not handled yet.
    """

    segment_id: int
    position: int

    def __str__(self) -> str:
        return f"{self.segment_id}:{self.position}"

    @staticmethod
    def parse(text: str) -> Position:
        match = _POSITION.match(text.strip())
        if match is None:
            raise ValueError(f"position {text!r} is not SEGMENT_ID:OFFSET")
        return Position(int(match.group(1)), int(match.group(2)))


class Deletion(NamedTuple):
    """A tombstone: hides everything written at or before ``timestamp`` (µs)."""

    timestamp: int
    local_deletion_time: int
    """Seconds since the epoch, on the writing node (drives tombstone GC, not visibility)."""


class Liveness(NamedTuple):
    """Primary-key liveness of a row (set by INSERT, not by UPDATE)."""

    timestamp: int
    ttl: int | None = None
    expires_at: int | None = None
    """Seconds since the epoch after which the row marker is gone (when ``ttl`` is set)."""


class Cell(NamedTuple):
    """One simple column value, or one element of a multi-cell column.

    ``path`` is None for simple columns; for non-frozen collections it is the list element's
    timeuuid, the set element or the map key; for non-frozen UDTs the field name.
    ``value`` is None for tombstones (``deleted``) and for set elements.
    """

    value: Any
    timestamp: int
    ttl: int | None = None
    local_deletion_time: int | None = None
    """For expiring cells: when they expire; for tombstones: when they were deleted."""
    deleted: bool = False
    path: Any = None


@dataclass(frozen=True, slots=True)
class ComplexColumn:
    """The cells of one multi-cell column (non-frozen collection or UDT) in one row.

    ``deletion`` set means the whole column was deleted or overwritten before these cells
    were written: an overwrite (``SET c = [...]``) is a deletion at the write timestamp
    minus one followed by the new elements; an append (``SET c = c + [...]``) has none.
    """

    deletion: Deletion | None
    cells: tuple[Cell, ...]


@dataclass(frozen=True, slots=True)
class Bound:
    """One end of a deleted clustering range; ``values`` is a prefix of the clustering."""

    values: tuple[Any, ...]
    inclusive: bool


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    keyspace: str
    table: str
    table_id: uuid.UUID
    operation: Operation
    partition_key: Mapping[str, Any]
    clustering: Mapping[str, Any]
    """Empty for partition deletions, static rows and ranges."""
    position: Position
    index: int = 0
    """Ordinal of the event within its entry: ``(position, index)`` orders all events of a node."""
    static: bool = False
    liveness: Liveness | None = None
    deletion: Deletion | None = None
    cells: Mapping[str, Cell] = field(default_factory=lambda: EMPTY)
    complex: Mapping[str, ComplexColumn] = field(default_factory=lambda: EMPTY)
    range_start: Bound | None = None
    range_end: Bound | None = None
    durable: bool = True
    """False if read ahead of the idx offset: acknowledged, but not yet synced to disk."""

    def newest_timestamp(self) -> int:
        """The newest write time (µs) the event carries: of its deletion, row marker, cells,
        collection deletions and elements; 0 when it carries none."""
        newest = 0
        if self.deletion is not None:
            newest = self.deletion.timestamp
        if self.liveness is not None and self.liveness.timestamp > newest:
            newest = self.liveness.timestamp
        for cell in self.cells.values():
            newest = max(newest, cell.timestamp)
        for column in self.complex.values():
            if column.deletion is not None:
                newest = max(newest, column.deletion.timestamp)
            for cell in column.cells:
                newest = max(newest, cell.timestamp)
        return newest
