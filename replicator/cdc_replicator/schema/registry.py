"""The schema registry: table id -> ``TableSchema``, refreshed from ``system_schema``.

Every table is known, not only CDC ones: a mutation can bundle a CDC table with others
(a batch), and an unknown table makes the rest of the mutation unparseable, since partition
updates carry no length.

The registry never forgets: a table dropped from Cassandra, or a column dropped from a
table, stays known, so segments written before the DROP still decode. Refreshes are
triggered by an unknown table id or column name (rate-limited, so the system tables' or a
dropped table's mutations do not trigger one query per entry) or explicitly.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from cdc_replicator.cql.types import CqlType, parse_type
from cdc_replicator.schema.model import ColumnDef, TableSchema


@dataclass(frozen=True, slots=True)
class TableRow:
    keyspace: str
    name: str
    id: uuid.UUID
    cdc: bool
    is_view: bool = False


@dataclass(frozen=True, slots=True)
class ColumnRow:
    keyspace: str
    table: str
    name: str
    kind: str
    position: int
    type: str
    clustering_order: str = "none"


@dataclass(frozen=True, slots=True)
class DroppedRow:
    keyspace: str
    table: str
    name: str
    kind: str
    type: str
    dropped_time: int
    """Microseconds since the epoch (Cassandra keeps it at millisecond precision)."""


@dataclass(frozen=True, slots=True)
class UdtRow:
    keyspace: str
    name: str
    field_names: tuple[str, ...]
    field_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SchemaSnapshot:
    tables: tuple[TableRow, ...]
    columns: tuple[ColumnRow, ...]
    dropped: tuple[DroppedRow, ...]
    types: tuple[UdtRow, ...]


SchemaSource = Callable[[], SchemaSnapshot]


def build_tables(snapshot: SchemaSnapshot) -> dict[bytes, TableSchema]:
    """Turn one snapshot of ``system_schema`` rows into table schemas keyed by raw table id."""
    udts: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
        (u.keyspace, u.name): (u.field_names, u.field_types) for u in snapshot.types
    }
    by_table: dict[tuple[str, str], list[ColumnRow]] = {}
    for column_row in snapshot.columns:
        by_table.setdefault((column_row.keyspace, column_row.table), []).append(column_row)
    dropped_by_table: dict[tuple[str, str], list[DroppedRow]] = {}
    for dropped in snapshot.dropped:
        dropped_by_table.setdefault((dropped.keyspace, dropped.table), []).append(dropped)

    tables: dict[bytes, TableSchema] = {}
    for row in snapshot.tables:
        ks = row.keyspace

        def resolve(name: str, ks: str = ks) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
            return udts.get((ks, name))

        def parse(text: str, resolve: Callable[[str], object] = resolve, ks: str = ks) -> CqlType:
            return parse_type(text, ks, resolve)  # type: ignore[arg-type]

        drops = {d.name: d for d in dropped_by_table.get((ks, row.name), [])}
        keys: list[ColumnDef] = []
        clustering: list[ColumnDef] = []
        columns: dict[bytes, ColumnDef] = {}
        for d in drops.values():
            column = ColumnDef(d.name, d.kind, -1, parse(d.type), dropped_at=d.dropped_time, current=False)
            columns[column.name_bytes] = column
        for c in by_table.get((ks, row.name), []):
            dropped_at = drops[c.name].dropped_time if c.name in drops else None
            column = ColumnDef(c.name, c.kind, c.position, parse(c.type), c.clustering_order == "desc", dropped_at)
            if c.kind == "partition_key":
                keys.append(column)
            elif c.kind == "clustering":
                clustering.append(column)
            else:
                columns[column.name_bytes] = column
        keys.sort(key=lambda c: c.position)
        clustering.sort(key=lambda c: c.position)
        tables[row.id.bytes] = TableSchema(
            row.id, ks, row.name, row.cdc, tuple(keys), tuple(clustering), columns, row.is_view
        )
    return tables


def _same_definition(a: TableSchema, b: TableSchema) -> bool:
    return (a.partition_key, a.clustering, a.columns, a.cdc) == (b.partition_key, b.clustering, b.columns, b.cdc)


class SchemaRegistry:
    """Table schemas by id, refreshed from a ``SchemaSource`` on demand."""

    def __init__(
        self,
        source: SchemaSource,
        min_refresh_interval_s: float = 2.0,
        version_source: Callable[[], object] | None = None,
    ) -> None:
        self._source = source
        self._version_source = version_source
        self._version: object = None
        self._min_interval = min_refresh_interval_s
        self._tables: dict[bytes, TableSchema] = {}
        # Ids still unknown after a refresh: tables dropped before we ever saw them. Their
        # mutations must not trigger a schema reload each (only a forced refresh retries).
        self._unknown: set[bytes] = set()
        self._last_refresh = float("-inf")
        self.refreshes = 0
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> bool:
        """Reload ``system_schema``; merge into what is known. False if rate-limited."""
        now = time.monotonic()
        if not force and now - self._last_refresh < self._min_interval:
            return False
        if force:
            self._unknown.clear()
        self._last_refresh = now
        self.refreshes += 1
        if self._version_source is not None:
            self._version = self._version_source()
        fresh = build_tables(self._source())
        for key, table in fresh.items():
            old = self._tables.get(key)
            if old is None:
                self._tables[key] = table
                continue
            # Keep columns Cassandra has forgotten (possible after a DROP is purged).
            for name, column in old.columns.items():
                if name not in table.columns:
                    table.columns[name] = replace(column, current=False)
            if _same_definition(old, table):
                continue
            table.generation = old.generation + 1
            self._tables[key] = table
        return True

    def refresh_if_changed(self) -> bool:
        """Reload if the cluster's schema version moved (call it periodically: it is one query).

        This is how schema changes are picked up before a mutation needs them; without a
        ``version_source`` only unknown ids and columns trigger a refresh.
        """
        if self._version_source is None or self._version_source() == self._version:
            return False
        return self.refresh(force=True)

    def table(self, table_id: bytes) -> TableSchema | None:
        """The table with this raw 16-byte id; refreshes once (rate-limited) if unknown."""
        table = self._tables.get(table_id)
        if table is None and table_id not in self._unknown and self.refresh():
            table = self._tables.get(table_id)
            if table is None:
                self._unknown.add(bytes(table_id))
        return table

    def column(self, table: TableSchema, name: bytes) -> ColumnDef | None:
        """A column of ``table`` by serialized name; refreshes once if unknown (an ALTER ADD)."""
        column = table.columns.get(name)
        if column is None and self.refresh():
            current = self._tables.get(table.id.bytes)
            if current is not None:
                column = current.columns.get(name)
        return column

    def tables(self) -> Iterable[TableSchema]:
        return self._tables.values()

    def find(self, keyspace: str, name: str) -> TableSchema | None:
        for table in self._tables.values():
            if table.keyspace == keyspace and table.name == name:
                return table
        return None
