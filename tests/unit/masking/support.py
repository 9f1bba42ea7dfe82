"""Helpers for the masking unit tests: tables from CQL-like column lists, events, policies."""

from __future__ import annotations

import uuid
from typing import Any

from cdc_replicator.contract.policy import MaskingPolicySpec
from cdc_replicator.cql.types import parse_type
from cdc_replicator.events import Cell, ChangeEvent, ComplexColumn, Operation, Position
from cdc_replicator.schema.model import ColumnDef, TableSchema

CONTACT = (("email", "phone"), ("text", "text"))


def _udts(name: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    return CONTACT if name == "contact" else None


def make_table(
    keyspace: str,
    name: str,
    partition_key: list[tuple[str, str]],
    clustering: list[tuple[str, str]] = (),  # type: ignore[assignment]
    regular: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> TableSchema:
    def columns(specs: list[tuple[str, str]], kind: str) -> tuple[ColumnDef, ...]:
        return tuple(
            ColumnDef(col, kind, i, parse_type(type_text, keyspace, _udts)) for i, (col, type_text) in enumerate(specs)
        )

    pk, ck, rc = columns(partition_key, "partition_key"), columns(clustering, "clustering"), columns(regular, "regular")
    return TableSchema(
        id=uuid.uuid4(),
        keyspace=keyspace,
        name=name,
        cdc=True,
        partition_key=pk,
        clustering=ck,
        columns={c.name.encode(): c for c in rc},
    )


def make_event(
    table: TableSchema,
    pk: dict[str, Any],
    ck: dict[str, Any] | None = None,
    cells: dict[str, Any] | None = None,
    complex_cells: dict[str, list[Cell]] | None = None,
    operation: Operation = Operation.UPSERT,
    **extra: Any,
) -> ChangeEvent:
    return ChangeEvent(
        keyspace=table.keyspace,
        table=table.name,
        table_id=table.id,
        operation=operation,
        partition_key=pk,
        clustering=ck or {},
        position=Position(1, 100),
        # A Cell is taken as given (its timestamp, TTL…); any other value becomes a cell written at 1000.
        cells={name: v if isinstance(v, Cell) else Cell(v, 1000) for name, v in (cells or {}).items()},
        complex={name: ComplexColumn(None, tuple(c)) for name, c in (complex_cells or {}).items()},
        **extra,
    )


def policy(*rules: dict[str, Any]) -> MaskingPolicySpec:
    return MaskingPolicySpec.model_validate({"rules": list(rules)})
