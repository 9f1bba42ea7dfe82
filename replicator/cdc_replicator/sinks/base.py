"""The interface every destination implements, and what a write reports back.

A sink is told, batch by batch, the events of one node up to a source position; it applies
them and stores that position **in the same transaction** (or, where the destination has no
transactions, in a way that a replay converges to the same state). On restart the pipeline
asks each sink where it stands and resumes the reader from the lowest position.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cdc_replicator.events import ChangeEvent, Position
from cdc_replicator.schema.model import TableSchema
from cdc_replicator.types.cql import CqlType

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
