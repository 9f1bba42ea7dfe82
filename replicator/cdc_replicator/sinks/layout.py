"""How one Cassandra table is laid out in a destination: pure data derived from its schema.

A ``TableLayout`` lists the key columns and, per non-key column, how its state is kept:

- ``simple``: one last-writer-wins register (value, write time, expiry);
- ``elements``: a non-frozen collection or UDT, one register per element plus the column's
  own deletion time (an overwrite deletes the older elements);
- ``counter``: the per-replica shards (the value is the sum of the latest shard per replica).

A *hidden* column (masked by ``null`` as a whole, ``cdc_replicator.masking.rules``) holds its
cells' liveness instead of their values (presence flags; counter shards with zero counts):
merges, TTLs and deletions treat it as any column of its storage, and a current-state view
reads it to decide whether the row exists but shows NULL for the column.

Columns dropped in Cassandra stay in the layout (old segments still mention them) with their
drop time, so a destination hides their cells as Cassandra does.

Names in base tables (``stored``, ``helper``): every helper column starts with ``_`` and a
character other than ``_`` (``_ck``, ``_live``, ``_t_<column>``...); a Cassandra column keeps its
name unless that starts with ``_``, in which case it gets one more (``_x`` is stored as ``__x``).
So no Cassandra column, whatever its name (``a__t``, ``_live``, ``_t_a``), can meet a helper. The
views show every column under its Cassandra name.

``LAYOUT_VERSION`` names the rules a destination table was created with (each sink marks its
tables with it and refuses to write into a table carrying another mark: see the sinks).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from cdc_replicator.cql.types import CqlType
from cdc_replicator.schema.model import TableSchema

LAYOUT_VERSION = 2
"""1: keys, bounds and ties compared as typed destination values (wrong for timeuuid, uuid,
negative numbers...); 2: Cassandra's byte orders (``cql.comparable``), helper names as above."""
LAYOUT_MARK = f"cdc-layout {LAYOUT_VERSION}"


def stored(name: str) -> str:
    """The base-table column of Cassandra column ``name`` (see the module docstring)."""
    return "_" + name if name.startswith("_") else name


def helper(part: str, name: str) -> str:
    """A per-column helper: ``t`` write time, ``x`` expiry, ``d`` deletion time, ``v`` value bytes."""
    return f"_{part}_{name}"


@dataclass(frozen=True, slots=True)
class KeyColumn:
    name: str
    type: CqlType
    descending: bool = False


@dataclass(frozen=True, slots=True)
class ValueColumn:
    name: str
    type: CqlType
    storage: str
    """``simple``, ``elements`` or ``counter``."""
    static: bool
    current: bool
    dropped_at: int | None
    hidden: bool = False
    """Holds a presence flag only (TRUE live, NULL tombstone); views show NULL for it."""


@dataclass(frozen=True, slots=True)
class TableLayout:
    keyspace: str
    table: str
    target: str
    """Destination base name: tables ``<target>__rows`` etc., the view ``<target>``."""
    partition_key: tuple[KeyColumn, ...]
    clustering: tuple[KeyColumn, ...]
    columns: tuple[ValueColumn, ...]
    generation: int

    @property
    def key_columns(self) -> tuple[KeyColumn, ...]:
        return self.partition_key + self.clustering

    @property
    def regular(self) -> tuple[ValueColumn, ...]:
        return tuple(c for c in self.columns if not c.static)

    @property
    def statics(self) -> tuple[ValueColumn, ...]:
        return tuple(c for c in self.columns if c.static)

    def column(self, name: str) -> ValueColumn | None:
        for column in self.columns:
            if column.name == name:
                return column
        return None


class DestinationTypes(dict[str, CqlType]):
    """Column types at the destination (where masking changes them), and ``hidden``: the columns
    masked by ``null`` as a whole, whose registers keep a presence flag (see the module docstring)."""

    def __init__(self, types: Mapping[str, CqlType] | None = None, hidden: Collection[str] = ()) -> None:
        super().__init__(types or {})
        self.hidden = frozenset(hidden)


def storage_of(cql: CqlType) -> str:
    if cql.kind == "counter":
        return "counter"
    return "elements" if cql.multi_cell else "simple"


def default_target(keyspace: str, table: str) -> str:
    return f"{keyspace}_{table}"


def layout_for(
    table: TableSchema, target: str | None = None, types: Mapping[str, CqlType] | None = None
) -> TableLayout:
    """The layout of ``table``; ``types`` overrides column types (masking changes some), and
    names the hidden columns if it is a ``DestinationTypes``."""
    override = types or {}
    hidden = types.hidden if isinstance(types, DestinationTypes) else frozenset()

    def typ(name: str, cql: CqlType) -> CqlType:
        return override.get(name, cql)

    keys = tuple(KeyColumn(c.name, typ(c.name, c.type)) for c in table.partition_key)
    clustering = tuple(KeyColumn(c.name, typ(c.name, c.type), c.reversed) for c in table.clustering)
    columns = tuple(
        ValueColumn(
            c.name, typ(c.name, c.type), storage_of(c.type), c.is_static, c.current, c.dropped_at, c.name in hidden
        )
        for c in sorted(table.columns.values(), key=lambda c: c.name)
    )
    return TableLayout(
        table.keyspace,
        table.name,
        target or default_target(table.keyspace, table.name),
        keys,
        clustering,
        columns,
        table.generation,
    )
