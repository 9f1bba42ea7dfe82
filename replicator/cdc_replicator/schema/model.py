"""What the decoder needs to know about a table and its columns."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from cdc_replicator.cql.decode import Decoder, decoder_for
from cdc_replicator.cql.types import CqlType


@dataclass(frozen=True, slots=True)
class ColumnDef:
    name: str
    kind: str
    """``partition_key``, ``clustering``, ``regular`` or ``static``."""
    position: int
    type: CqlType
    reversed: bool = False
    """Clustering column in DESC order (same bytes, reversed comparison)."""
    dropped_at: int | None = None
    """Microseconds: cells written at or before this are gone (the column was dropped then)."""
    current: bool = True
    """False for a column that is dropped (and not re-added): only old data mentions it."""
    width: int | None = field(init=False, repr=False, compare=False)
    """``type.fixed_width``, precomputed: it is asked for every cell."""
    multi_cell: bool = field(init=False, repr=False, compare=False)
    decode: Decoder = field(init=False, repr=False, compare=False)
    element_decoders: tuple[Decoder, ...] = field(init=False, repr=False, compare=False)
    """For multi-cell columns: decoders of (path, value); UDTs decode the path themselves."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "decode", decoder_for(self.type))
        object.__setattr__(self, "width", self.type.fixed_width)
        object.__setattr__(self, "multi_cell", self.type.multi_cell)
        t = self.type
        if t.kind == "list":
            elements: tuple[Decoder, ...] = (decoder_for(CqlType("timeuuid")), decoder_for(t.params[0]))
        elif t.kind == "set":
            elements = (decoder_for(t.params[0]), decoder_for(CqlType("empty")))
        elif t.kind == "map":
            elements = (decoder_for(t.params[0]), decoder_for(t.params[1]))
        else:
            elements = ()
        object.__setattr__(self, "element_decoders", elements)

    @property
    def is_static(self) -> bool:
        return self.kind == "static"

    @property
    def name_bytes(self) -> bytes:
        return self.name.encode("utf-8")

    def decode_path(self, path: bytes) -> Any:
        """The element key of a multi-cell column's cell."""
        if self.type.kind == "udt":
            # A UDT cell path is the field's index as a 2-byte short.
            index = int.from_bytes(path, "big")
            fields = self.type.fields
            return fields[index] if index < len(fields) else index
        return self.element_decoders[0](path)

    def decode_element(self, path: bytes, value: bytes) -> Any:
        if self.type.kind == "udt":
            index = int.from_bytes(path, "big")
            params = self.type.params
            return decoder_for(params[index])(value) if index < len(params) else bytes(value)
        return self.element_decoders[1](value)


@dataclass(slots=True)
class TableSchema:
    """A table (or materialized view) as this reader knows it: current and dropped columns.

    ``columns`` maps every column name the commitlog may mention (current regular and
    static columns and dropped ones) to its definition. Rows name their columns, so a
    mutation written before an ALTER decodes with the columns of its time.
    """

    id: uuid.UUID
    keyspace: str
    name: str
    cdc: bool
    partition_key: tuple[ColumnDef, ...]
    clustering: tuple[ColumnDef, ...]
    columns: dict[bytes, ColumnDef]
    is_view: bool = False
    generation: int = 0
    """Bumped whenever a refresh changes this table's definition."""
    # Decoded header column lists, keyed by their serialized bytes (they repeat a lot).
    header_cache: dict[bytes, tuple[ColumnDef, ...]] = field(default_factory=dict, repr=False)
    clustering_names: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.clustering_names = tuple(c.name for c in self.clustering)

    @property
    def qualified_name(self) -> str:
        return f"{self.keyspace}.{self.name}"

    def decode_partition_key(self, key: bytes) -> dict[str, Any]:
        """Split and decode the serialized partition key.

        A single-column key is the value itself; a composite key (CompositeType) is a
        sequence of ``uint16 length | bytes | end-of-component byte``.
        """
        columns = self.partition_key
        if len(columns) == 1:
            return {columns[0].name: columns[0].decode(key)}
        out: dict[str, Any] = {}
        pos = 0
        if key[:2] == b"\xff\xff":  # static-compound marker, never in partition keys in practice
            pos = 2
        for column in columns:
            length = int.from_bytes(key[pos : pos + 2], "big")
            pos += 2
            out[column.name] = column.decode(key[pos : pos + length])
            pos += length + 1
        return out
