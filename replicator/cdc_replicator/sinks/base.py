"""The interface every destination implements, and what a write reports back.

A sink is told, batch by batch, the events of one node up to a source position; it applies
them and stores that position **in the same transaction** (or, where the destination has no
transactions, in a way that a replay converges to the same state). On restart the pipeline
asks each sink where it stands and resumes the reader from the lowest position.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from cdc_replicator.cql.types import CqlType
from cdc_replicator.events import ChangeEvent, Position
from cdc_replicator.schema.model import TableSchema
from cdc_replicator.sinks.layout import TableLayout, layout_for

T = TypeVar("T")

TableOf = Callable[[ChangeEvent], TableSchema | None]
"""The schema an event was decoded with (its table, at the generation the pipeline knows)."""
TypesOf = Callable[[TableSchema], Mapping[str, CqlType]]
"""Destination column types overriding the source's (masking changes some); empty: none."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    event: ChangeEvent | None
    error: str
    keyspace: str = ""
    table: str = ""


@dataclass(slots=True)
class WriteResult:
    applied: int = 0
    """Events merged into destination tables."""
    dead: list[DeadLetter] = field(default_factory=list)
    per_table: dict[str, int] = field(default_factory=dict)
    """``keyspace.table`` -> events applied."""
    max_write_time: int = 0
    """Highest Cassandra write timestamp (µs) in the batch, for lag."""


class DestinationError(Exception):
    """The destination failed as a whole (unreachable, transaction aborted): retry the batch later."""


class Sink(Protocol):
    name: str

    async def start(self) -> None:
        """Connect and create what the destination needs (offsets, dead letters, helpers)."""

    async def committed(self) -> Position | None:
        """The position this destination has committed for our node, or None."""

    async def write(
        self,
        events: Sequence[ChangeEvent],
        table_of: TableOf,
        upto: Position,
        rejected: Sequence[DeadLetter] = (),
    ) -> WriteResult:
        """Apply ``events``, dead-letter ``rejected`` (refused upstream, e.g. by masking) and commit
        ``upto`` with them; raise ``DestinationError`` to retry."""

    async def ping(self) -> float:
        """Round trip in seconds; raises when the destination is unreachable."""

    async def close(self) -> None: ...


class TableCache(Generic[T]):
    """What a sink knows about each source table (its layout, folder, DDL), built by ``build``
    once per table *and schema generation*: an ALTER TABLE gives a new generation, so a new layout."""

    def __init__(self, build: Callable[[TableLayout], T], targets: Mapping[str, str], types_of: TypesOf | None) -> None:
        self.build = build
        self.targets = targets
        """``keyspace.table`` -> destination table name, where configured."""
        self.types_of = types_of
        self._known: dict[tuple[Any, int], T] = {}

    def get(self, event: ChangeEvent, table_of: TableOf) -> T | None:
        """The entry for the table ``event`` was decoded with; None for a table the schema lacks."""
        schema = table_of(event)
        if schema is None:
            return None
        key = (schema.id, schema.generation)
        known = self._known.get(key)
        if known is None:
            types = self.types_of(schema) if self.types_of is not None else None
            known = self._known[key] = self.build(layout_for(schema, self.targets.get(schema.qualified_name), types))
        return known
