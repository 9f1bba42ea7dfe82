"""Compiled masking plans: a policy bound to one table, its keys and its encoders.

``compile_table(spec, table, keys)`` (once per table and schema generation, and again after a
key rotation) decides, for each column, which rules apply and at which path (``rules.py``),
checks that every action fits the CQL type it lands on, and binds closures (keys, salts,
encoders) into a ``TablePlan``: per masked column, value masks (``steps``) or cell masks
(``cell_steps``), each with its audit slot, and the columns' destination types. Applying a
plan to events is ``apply.py``'s work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from cdc_replicator.contract.policy import DEFAULT_MARKER, Action, MaskingPolicySpec, MaskingRule
from cdc_replicator.cql.types import CqlType
from cdc_replicator.cql.values import CqlMap, UdtValue
from cdc_replicator.events import Cell
from cdc_replicator.masking.actions import (
    KeyMaterial,
    Mask,
    counter_presence_fn,
    encoder_for,
    hash_fn,
    hmac_fn,
    null_fn,
    partial_fn,
    presence_fn,
    redact_fn,
)
from cdc_replicator.masking.rules import (
    PRIMARY_KEY_KINDS,
    PolicyError,
    all_columns,
    check_table,
    hides,
    keyed_step,
    masked_type,
    path_step,
    rules_for_column,
    type_at,
)
from cdc_replicator.schema.model import TableSchema

CellMask = Callable[[Cell], Cell]
"""Masks one cell of a multi-cell column; returns the same object when the rule does not touch it."""


class MaskingError(RuntimeError):
    """An event could not be masked; it must not leave the replicator."""


@dataclass(frozen=True, slots=True)
class AuditKey:
    """What one masking counter counts: a rule applied to a column (at a path)."""

    rule: str
    classification: str
    action: str
    keyspace: str
    table: str
    column: str
    path: str = ""
    """Dotted path inside the column (``value.email``), empty for the whole column."""

    @property
    def field(self) -> str:
        return f"{self.column}.{self.path}" if self.path else self.column


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """How one column of one table is masked."""

    name: str
    kind: str
    source_type: CqlType
    destination_type: CqlType
    steps: tuple[tuple[int, Mask], ...] = ()
    """For values (scalars, frozen values, key columns): ``(audit slot, mask)`` in order."""
    cell_steps: tuple[tuple[int, CellMask], ...] = ()
    """For the cells of a multi-cell column: ``(audit slot, cell mask)`` in order."""
    drop_slot: int | None = None
    """A set or map nulled as a whole: left out of events (counted in this slot)."""


@dataclass(frozen=True, slots=True)
class TablePlan:
    """The compiled policy for one table at one schema generation and key version."""

    keyspace: str
    table: str
    generation: int
    columns: Mapping[str, ColumnPlan]
    """Masked columns only."""
    destination_types: Mapping[str, CqlType]
    """Every column's type at the destination (changed where masking changes it)."""
    audit: tuple[AuditKey, ...]
    """One counter slot per (rule, column, path); ``mask_event`` adds into ``counts[slot]``."""
    clustering: tuple[ColumnPlan | None, ...]
    """Per clustering position, its plan if masked (range bounds are positional)."""
    hidden: frozenset[str] = frozenset()
    """Columns whose cells keep their liveness only (presence flags, zeroed counter shards);
    views must show them as NULL (see the module docstring)."""
    key_columns: Mapping[str, ColumnPlan] = field(default_factory=lambda: MappingProxyType({}))
    """The masked partition-key and clustering columns (``columns`` restricted to them)."""
    value_columns: tuple[tuple[str, tuple[tuple[int, Mask], ...]], ...] = ()
    """``(name, steps)`` of every other masked column, in the shape ``mask_event`` walks."""

    @property
    def dropped_columns(self) -> tuple[str, ...]:
        """Sets and maps nulled as a whole: left out of events (see the module docstring)."""
        return tuple(name for name, column in self.columns.items() if column.drop_slot is not None)

    @property
    def masks_anything(self) -> bool:
        return bool(self.columns)

    def new_counts(self) -> list[int]:
        return [0] * len(self.audit)


# --- building masks -----------------------------------------------------------------------


def _leaf_mask(rule: MaskingRule, leaf_type: CqlType, keys: Mapping[str, KeyMaterial]) -> Mask:
    action = rule.action
    if action == Action.HMAC:
        return hmac_fn(keys[rule.key_ref or ""], encoder_for(leaf_type))
    if action == Action.HASH:
        return hash_fn(keys[rule.salt_ref or ""], encoder_for(leaf_type))
    if action == Action.REDACT:
        return redact_fn(DEFAULT_MARKER if rule.marker is None else rule.marker)
    if action == Action.PARTIAL:
        return partial_fn(rule.keep_last or 0, rule.mask_char or "*")
    return null_fn()


def _at_path(cql_type: CqlType, path: tuple[str, ...], leaf: Mask) -> Mask:  # noqa: PLR0911 - one per container
    """A mask applying ``leaf`` at ``path`` inside a decoded (frozen) value, rebuilding the containers."""
    if not path:
        return leaf
    step = path[0]
    index, child, _ = path_step(cql_type, step)
    inner = _at_path(child, path[1:], leaf)
    kind = cql_type.kind
    wanted = keyed_step(step)
    if kind == "map" and wanted is not None:
        key_bytes, wanted_bytes = encoder_for(cql_type.params[0]), wanted.encode()

        def map_value_at_key(value: Any) -> Any:
            if value is None:
                return None
            return CqlMap((k, inner(v) if k is not None and key_bytes(k) == wanted_bytes else v) for k, v in value)

        return map_value_at_key
    if kind == "map" and step == "key":

        def map_keys(value: Any) -> Any:
            return None if value is None else CqlMap((inner(k), v) for k, v in value)

        return map_keys
    if kind == "map":

        def map_values(value: Any) -> Any:
            return None if value is None else CqlMap((k, inner(v)) for k, v in value)

        return map_values
    if kind == "udt":

        def udt_field(value: Any) -> Any:
            return None if value is None else UdtValue((n, inner(v) if n == step else v) for n, v in value)

        return udt_field
    if kind == "tuple":

        def tuple_item(value: Any) -> Any:
            return None if value is None else tuple(inner(v) if i == index else v for i, v in enumerate(value))

        return tuple_item

    def elements(value: Any) -> Any:  # list, set, vector
        return None if value is None else tuple(inner(v) for v in value)

    return elements


def _cell_mask(column_type: CqlType, path: tuple[str, ...], leaf: Mask) -> CellMask:
    """A mask for one cell of a multi-cell column: the first step picks the cell's path or value."""
    step, rest = path[0], path[1:]
    _, child, _ = path_step(column_type, step)
    inner = _at_path(child, rest, leaf)
    kind = column_type.kind
    # Lists keep their element in the value (the path is a timeuuid); sets keep it in the path.
    masks_path = (kind == "set") or (kind == "map" and step == "key")

    if kind == "udt":

        def udt_cell(cell: Cell) -> Cell:
            if cell.path != step or cell.value is None:
                return cell
            return Cell(inner(cell.value), cell.timestamp, cell.ttl, cell.local_deletion_time, cell.deleted, cell.path)

        return udt_cell
    wanted = keyed_step(step)
    if wanted is not None:
        key_bytes, wanted_bytes = encoder_for(column_type.params[0]), wanted.encode()

        def keyed_cell(cell: Cell) -> Cell:
            if cell.value is None or key_bytes(cell.path) != wanted_bytes:
                return cell
            return Cell(inner(cell.value), cell.timestamp, cell.ttl, cell.local_deletion_time, cell.deleted, cell.path)

        return keyed_cell
    if masks_path:

        def path_cell(cell: Cell) -> Cell:
            return Cell(cell.value, cell.timestamp, cell.ttl, cell.local_deletion_time, cell.deleted, inner(cell.path))

        return path_cell

    def value_cell(cell: Cell) -> Cell:
        if cell.value is None:
            return cell
        return Cell(inner(cell.value), cell.timestamp, cell.ttl, cell.local_deletion_time, cell.deleted, cell.path)

    return value_cell


def _present_cell(cell: Cell) -> Cell:
    """One element of a hidden list or UDT: its key stays, its value becomes a presence flag."""
    if cell.value is None:
        return cell
    return Cell(True, cell.timestamp, cell.ttl, cell.local_deletion_time, cell.deleted, cell.path)


def _hiding_mask(column_type: CqlType) -> Mask:
    return counter_presence_fn() if column_type.kind == "counter" else presence_fn()


def compile_table(spec: MaskingPolicySpec, table: TableSchema, keys: Mapping[str, KeyMaterial]) -> TablePlan:
    """The plan masking ``table``'s events; raises ``PolicyError`` if the policy does not fit."""
    problems = check_table(spec, table, keys)
    if problems:
        raise PolicyError(problems)
    columns: dict[str, ColumnPlan] = {}
    destination: dict[str, CqlType] = {}
    audit: list[AuditKey] = []
    hidden: set[str] = set()
    for column in all_columns(table):
        rules = rules_for_column(spec, table.keyspace, table.name, column.name)
        destination[column.name] = masked_type(column.type, rules)
        if not rules:
            continue
        hide = column.kind not in PRIMARY_KEY_KINDS and hides(column.type, rules)
        if hide:
            hidden.add(column.name)
        steps: list[tuple[int, Mask]] = []
        cell_steps: list[tuple[int, CellMask]] = []
        drop_slot: int | None = None
        for rule in rules:
            path = tuple(rule.match.path)
            slot = len(audit)
            audit.append(
                AuditKey(
                    rule.name,
                    rule.classification.value,
                    rule.action.value,
                    table.keyspace,
                    table.name,
                    column.name,
                    ".".join(path),
                )
            )
            if hide and column.type.multi_cell:
                cell_steps.append((slot, _present_cell))
            elif hide:
                steps.append((slot, _hiding_mask(column.type)))
            elif not column.type.multi_cell:
                leaf_type, _ = type_at(column.type, path)
                steps.append((slot, _at_path(column.type, path, _leaf_mask(rule, leaf_type, keys))))
            elif path:
                leaf_type, _ = type_at(column.type, path)
                cell_steps.append((slot, _cell_mask(column.type, path, _leaf_mask(rule, leaf_type, keys))))
            else:
                drop_slot = slot  # null over a whole set or map (anything else was rejected)
        columns[column.name] = ColumnPlan(
            column.name,
            column.kind,
            column.type,
            destination[column.name],
            tuple(steps),
            tuple(cell_steps),
            drop_slot,
        )
    clustering = tuple(columns.get(c.name) for c in table.clustering)
    return TablePlan(
        table.keyspace,
        table.name,
        table.generation,
        MappingProxyType(columns),
        MappingProxyType(destination),
        tuple(audit),
        clustering,
        frozenset(hidden),
        MappingProxyType({n: c for n, c in columns.items() if c.kind in PRIMARY_KEY_KINDS}),
        tuple((n, c.steps) for n, c in columns.items() if c.kind not in PRIMARY_KEY_KINDS),
    )


def destination_type(plan: TablePlan, column: str) -> CqlType:
    """The type a sink must give ``column`` (text where a hash, hmac or redact replaced the value)."""
    try:
        return plan.destination_types[column]
    except KeyError:
        raise MaskingError(f"{plan.keyspace}.{plan.table} has no column {column!r}") from None
