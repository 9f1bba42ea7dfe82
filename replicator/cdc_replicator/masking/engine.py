"""Compile a masking policy against a table's schema, then mask change events with the result.

Two phases, so the per-event work is small:

1. ``compile_table(spec, table, keys)`` (once per table and schema generation, and again
   after a key rotation) decides, for each column, which rules apply and at which path,
   checks that every action fits the CQL type it lands on, and binds closures (keys, salts,
   encoders) into a ``TablePlan``. ``check_policy`` runs the same checks over every table
   without keys, so the replicator refuses a bad policy before it reads a byte.
2. ``mask_event(plan, event, counts)`` applies a plan to one event: partition key,
   clustering, simple cells, collection / UDT cells and range bounds. Events of tables
   with nothing to mask are returned as they are; others are copied only where masked.

Rule resolution, per column: the first rule (in policy order) without a ``path`` masks the
whole column and wins; otherwise each path rule masks its path, the first rule per path
wins, and a path inside an already-masked path is left to the outer rule.

A ``null`` rule over a whole column (not a path) *hides* the column: its cells keep their
liveness but never their value, so that a row that exists in Cassandra only through that
column (an ``UPDATE`` writes no row marker; a counter table has none at all) still exists at
the destination, and write times, TTLs and tombstones keep their meaning in the sinks'
registers. How depends on how the column is stored:

- a simple column: a live cell becomes ``True`` (a tombstone stays null), and the destination
  type is ``boolean``, a presence flag;
- a counter: each replica's shard stays with its clock and running total zeroed, and the type
  stays ``counter`` (the sinks' counter rules, such as a counter tombstone always winning, apply
  unchanged);
- a non-frozen list or UDT: each element cell keeps its key (a list's timeuuid, a UDT's field
  name: neither is a value) and its value becomes ``True``; the type becomes ``list<boolean>``
  or the UDT with every field ``boolean``.

``TablePlan.hidden`` names these columns: the sinks' views project NULL for them (users see a
null column, as the rule says) while still reading them to decide whether a row exists. That
discloses only that a cell exists, which the row's existence discloses anyway.

A nulled non-frozen *set* or *map* cannot be hidden: its element keys (set elements, map keys)
are values themselves, and a presence per element would need them. It is left out of events,
so a row alive only through such a column does not appear at destinations; ``dropped_columns``
names these columns so the replicator can warn at start-up (mask such a column by path with
``hash`` or ``hmac`` instead to keep its rows).

Where a value identifies something (a partition-key or clustering column, a map key, a set
element) only ``hash`` and ``hmac`` are accepted: they are deterministic and injective, so
upserts of the same row still meet and distinct rows stay distinct. ``redact``, ``partial``
and ``null`` would merge rows (or make keys null), and are rejected at load time.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any, TypeVar

from cdc_replicator.contract.policy import (
    DEFAULT_MARKER,
    DETERMINISTIC_INJECTIVE,
    Action,
    MaskingPolicySpec,
    MaskingRule,
)
from cdc_replicator.cql.types import CqlType
from cdc_replicator.cql.values import CqlMap, UdtValue
from cdc_replicator.events import Bound, Cell, ChangeEvent, ComplexColumn, Operation
from cdc_replicator.masking.actions import (
    TEXT,
    TEXT_KINDS,
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
from cdc_replicator.schema.model import ColumnDef, TableSchema

T = TypeVar("T")
CellMask = Callable[[Cell], Cell]
"""Masks one cell of a multi-cell column; returns the same object when the rule does not touch it."""
PRIMARY_KEY_KINDS = frozenset({"partition_key", "clustering"})


class PolicyError(ValueError):
    """The policy cannot apply to the tables as they are; ``problems`` names each rule and column."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("masking policy rejected:\n  - " + "\n  - ".join(problems))


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


# --- matching -----------------------------------------------------------------------------


def rule_matches(rule: MaskingRule, keyspace: str, table: str, column: str) -> bool:
    """Whether ``rule`` selects ``keyspace.table.column`` (globs and regexes are case-sensitive)."""
    match = rule.match
    if not (fnmatch.fnmatchcase(keyspace, match.keyspace) and fnmatch.fnmatchcase(table, match.table)):
        return False
    if match.column is not None:
        return fnmatch.fnmatchcase(column, match.column)
    return match.column_regex is not None and re.fullmatch(match.column_regex, column) is not None


def rules_for_column(spec: MaskingPolicySpec, keyspace: str, table: str, column: str) -> list[MaskingRule]:
    """The rules that apply to a column, after precedence (see the module docstring)."""
    matching = [r for r in spec.rules if rule_matches(r, keyspace, table, column)]
    whole = next((r for r in matching if not r.match.path), None)
    if whole is not None:
        return [whole]
    chosen: list[MaskingRule] = []
    taken: list[tuple[str, ...]] = []
    # Stable sort: policy order within a depth. ``value[k]`` counts as inside ``value``.
    for rule in sorted(matching, key=lambda r: len(_nesting(r.match.path))):
        path = _nesting(rule.match.path)
        if any(path[: len(outer)] == outer for outer in taken):
            continue
        chosen.append(rule)
        taken.append(path)
    return chosen


# --- types and paths ----------------------------------------------------------------------


class _PathError(ValueError):
    pass


_KEYED_VALUE = re.compile(r"^value\[(.*)\]$", re.DOTALL)


def _keyed(step: str) -> str | None:
    """The map key of a ``value[<key>]`` step (the value under one key), else None."""
    found = _KEYED_VALUE.match(step)
    return None if found is None else found.group(1)


def _nesting(path: Iterable[str]) -> tuple[str, ...]:
    """``path`` with ``value[k]`` split into ``value``, ``[k]``: what lies inside what, for precedence."""
    out: list[str] = []
    for step in path:
        key = _keyed(step)
        out.extend(("value", f"[{key}]") if key is not None else (step,))
    return tuple(out)


def _step(cql_type: CqlType, step: str) -> tuple[int, CqlType, bool]:
    """One path step into ``cql_type``: ``(parameter index, child type, child identifies an element)``."""
    kind = cql_type.kind
    if kind in ("list", "vector") and step == "element":
        return 0, cql_type.params[0], False
    if kind == "set" and step == "element":
        return 0, cql_type.params[0], True
    if kind == "map" and step in ("key", "value"):
        return (0, cql_type.params[0], True) if step == "key" else (1, cql_type.params[1], False)
    if kind == "map" and _keyed(step) is not None:
        return 1, cql_type.params[1], False
    if kind == "udt" and step in cql_type.fields:
        index = cql_type.fields.index(step)
        return index, cql_type.params[index], False
    if kind == "tuple" and step.isdigit() and int(step) < len(cql_type.params):
        return int(step), cql_type.params[int(step)], False
    expected = {
        "list": "element",
        "vector": "element",
        "set": "element",
        "map": "key, value or value[<key>]",
        "udt": "one of its fields " + ", ".join(cql_type.fields),
        "tuple": f"an index below {len(cql_type.params)}",
    }.get(kind)
    if expected is None:
        raise _PathError(f"path step {step!r} goes into {cql_type}, which has no parts")
    raise _PathError(f"path step {step!r} does not apply to {cql_type} (expected {expected})")


def _leaf(cql_type: CqlType, path: tuple[str, ...]) -> tuple[CqlType, bool]:
    """The type at ``path`` and whether any step on the way identifies an element."""
    identifies = False
    for step in path:
        _, cql_type, key_like = _step(cql_type, step)
        identifies = identifies or key_like
    return cql_type, identifies


def _retype(cql_type: CqlType, path: tuple[str, ...], leaf_type: CqlType) -> CqlType:
    """``cql_type`` with the type at ``path`` replaced by ``leaf_type``."""
    if not path:
        return leaf_type
    index, child, _ = _step(cql_type, path[0])
    params = list(cql_type.params)
    params[index] = _retype(child, path[1:], leaf_type)
    return replace(cql_type, params=tuple(params))


def _result_type(rule: MaskingRule, leaf_type: CqlType) -> CqlType:
    if rule.action in (Action.HASH, Action.HMAC, Action.REDACT):
        return TEXT
    if rule.action == Action.PARTIAL and leaf_type.kind == "ascii" and not (rule.mask_char or "*").isascii():
        return TEXT
    return leaf_type


PRESENCE = CqlType("boolean")
"""The destination type of a hidden simple column, and of a hidden list's or UDT's elements."""
_KEYED_BY_VALUE = frozenset({"set", "map"})
"""Multi-cell kinds whose element keys are values: they cannot be hidden, only left out."""


def hides(source_type: CqlType, rules: Iterable[MaskingRule]) -> bool:
    """Whether ``rules`` (as resolved) hide a column of ``source_type``: ``null`` over the whole
    column, which keeps only its cells' liveness (see the module docstring). Not for a non-frozen
    set or map, whose element keys are values."""
    if source_type.multi_cell and source_type.kind in _KEYED_BY_VALUE:
        return False
    return any(rule.action == Action.NULL and not rule.match.path for rule in rules)


def _hidden_type(source_type: CqlType) -> CqlType:
    if source_type.kind == "counter":
        return source_type
    if source_type.multi_cell:  # a list or a UDT: every element or field becomes a presence flag
        return replace(source_type, params=tuple(PRESENCE for _ in source_type.params))
    return PRESENCE


def masked_type(source_type: CqlType, rules: Iterable[MaskingRule]) -> CqlType:
    """The destination type of a column of ``source_type`` masked by ``rules`` (as resolved)."""
    rules = list(rules)
    if hides(source_type, rules):
        return _hidden_type(source_type)
    result = source_type
    for rule in rules:
        path = tuple(rule.match.path)
        leaf_type, _ = _leaf(source_type, path)
        result = _retype(result, path, _result_type(rule, leaf_type))
    return result


def _problem(rule: MaskingRule, column: ColumnDef) -> str | None:  # noqa: PLR0911 - one return per reason
    """Why ``rule`` cannot mask ``column``, or None if it can."""
    path = tuple(rule.match.path)
    try:
        leaf_type, identifies = _leaf(column.type, path)
    except _PathError as exc:
        return str(exc)
    if column.type.kind == "counter" and rule.action != Action.NULL:
        # An event holds per-replica shards of a counter, not its value: nothing to hash consistently.
        return "counter cells hold per-replica shards, not values: only null can mask a counter"
    if rule.action == Action.PARTIAL and leaf_type.kind not in TEXT_KINDS:
        return f"partial keeps characters of text, and the value at this place is {leaf_type}"
    if rule.action not in DETERMINISTIC_INJECTIVE:
        if column.kind in PRIMARY_KEY_KINDS:
            return (
                f"{column.kind.replace('_', ' ')} columns identify rows: only hash or hmac keep distinct "
                f"rows distinct (and {rule.action.value} would merge or null them)"
            )
        if identifies:
            return "map keys and set elements identify elements: only hash or hmac keep them distinct"
    result_type = _result_type(rule, leaf_type)
    if any(_keyed(step) is not None for step in path) and not (
        result_type == leaf_type or (leaf_type.kind in TEXT_KINDS and result_type.kind == "text")
    ):
        return (
            f"masking the values of some map keys only would mix {leaf_type} and {result_type} values "
            "in one map: mask every value (path [value]), or use null"
        )
    if column.type.multi_cell and not path and rule.action != Action.NULL:
        parts = {"list": "[element]", "set": "[element]", "map": "[key] or [value]", "udt": "[<field>]"}
        return (
            f"{column.type} is stored cell by cell, so it is masked by its parts: "
            f"give the rule a path, e.g. {parts.get(column.type.kind, '[...]')} (or use null for the whole column)"
        )
    return None


def _describe(rule: MaskingRule, table: TableSchema, column: ColumnDef) -> str:
    path = ".".join(rule.match.path)
    where = f"{table.keyspace}.{table.name}.{column.name}" + (f" at path {path}" if path else "")
    return f"rule {rule.name!r} ({rule.action.value}) cannot mask {where} of type {column.type}"


def _all_columns(table: TableSchema) -> list[ColumnDef]:
    seen: dict[str, ColumnDef] = {}
    for column in (*table.partition_key, *table.clustering, *table.columns.values()):
        seen.setdefault(column.name, column)
    return list(seen.values())


def check_table(spec: MaskingPolicySpec, table: TableSchema, key_names: Iterable[str]) -> list[str]:
    """Every reason ``spec`` cannot apply to ``table`` (empty if it can). Needs key names, not keys."""
    available = set(key_names)
    problems: list[str] = []
    for column in _all_columns(table):
        for rule in rules_for_column(spec, table.keyspace, table.name, column.name):
            reason = _problem(rule, column)
            if reason is not None:
                problems.append(f"{_describe(rule, table, column)}: {reason}")
    return problems + [
        f"rule {rule.name!r} references {'key' if rule.action == Action.HMAC else 'salt'} {ref!r}, "
        "which is not among the configured masking keys"
        for rule in spec.rules
        if (ref := rule.secret_ref) is not None and ref not in available
    ]


def check_policy(spec: MaskingPolicySpec, tables: Iterable[TableSchema], key_names: Iterable[str]) -> None:
    """Raise ``PolicyError`` listing every problem of ``spec`` over ``tables``; the load-time gate."""
    names = set(key_names)
    problems: list[str] = []
    for table in tables:
        problems.extend(p for p in check_table(spec, table, names) if p not in problems)
    if problems:
        raise PolicyError(problems)


def unmatched_rules(spec: MaskingPolicySpec, tables: Iterable[TableSchema]) -> list[str]:
    """Names of rules that select no column of ``tables`` (likely a typo; worth a warning or a status)."""
    used: set[str] = set()
    for table in tables:
        for column in _all_columns(table):
            used.update(r.name for r in spec.rules if rule_matches(r, table.keyspace, table.name, column.name))
    return [rule.name for rule in spec.rules if rule.name not in used]


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
    index, child, _ = _step(cql_type, step)
    inner = _at_path(child, path[1:], leaf)
    kind = cql_type.kind
    wanted = _keyed(step)
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
    _, child, _ = _step(column_type, step)
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
    wanted = _keyed(step)
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
    for column in _all_columns(table):
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
                leaf_type, _ = _leaf(column.type, path)
                steps.append((slot, _at_path(column.type, path, _leaf_mask(rule, leaf_type, keys))))
            elif path:
                leaf_type, _ = _leaf(column.type, path)
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


# --- masking events -----------------------------------------------------------------------


def _mask_value(column: ColumnPlan, value: Any, counts: list[int]) -> Any:
    for slot, mask in column.steps:
        value = mask(value)
        counts[slot] += 1
    return value


def _writable(values: Mapping[str, T]) -> dict[str, T]:
    """A mutable copy. The decoder hands out read-only views: ``dict(view)`` copies them key by
    key through the mapping protocol, ``view.copy()`` copies the dict underneath (10x faster)."""
    if isinstance(values, MappingProxyType | dict):
        return values.copy()
    return dict(values)


def _mask_key(values: Mapping[str, Any], columns: Mapping[str, ColumnPlan], counts: list[int]) -> Mapping[str, Any]:
    out: dict[str, Any] | None = None
    for name, value in values.items():
        column = columns.get(name)
        if column is None or value is None:
            continue
        if out is None:
            out = _writable(values)
        out[name] = _mask_value(column, value, counts)
    return values if out is None else MappingProxyType(out)


_tuple_new = tuple.__new__
if Cell._fields != ("value", "timestamp", "ttl", "local_deletion_time", "deleted", "path"):  # pragma: no cover
    raise ImportError("masking.engine rebuilds Cell positionally: update _mask_cells for its new fields")


def _mask_cells(
    cells: Mapping[str, Cell], columns: tuple[tuple[str, tuple[tuple[int, Mask], ...]], ...], counts: list[int]
) -> Mapping[str, Cell]:
    # Walk the (few) masked columns, not every cell of the event; rebuild cells with
    # ``tuple.__new__`` rather than ``Cell(...)`` (NamedTuple's argument handling costs 3x).
    out: dict[str, Cell] | None = None
    for name, steps in columns:
        cell = cells.get(name)
        if cell is None:
            continue
        value = cell[0]
        if value is None:
            continue
        if not steps:
            # A masked column arriving in a shape its plan does not cover: refuse rather than leak.
            raise MaskingError(f"column {name!r} arrived as a simple cell but is planned as a multi-cell column")
        if out is None:
            out = _writable(cells)
        for slot, mask in steps:
            value = mask(value)
            counts[slot] += 1
        out[name] = _tuple_new(Cell, (value, cell[1], cell[2], cell[3], cell[4], cell[5]))
    return cells if out is None else MappingProxyType(out)


def _mask_complex(
    complex_columns: Mapping[str, ComplexColumn], columns: Mapping[str, ColumnPlan], counts: list[int]
) -> Mapping[str, ComplexColumn]:
    out: dict[str, ComplexColumn] | None = None
    for name, complex_column in complex_columns.items():
        column = columns.get(name)
        if column is None:
            continue
        if out is None:
            out = _writable(complex_columns)
        if column.drop_slot is not None:
            del out[name]
            counts[column.drop_slot] += len(complex_column.cells)
            continue
        if not column.cell_steps:
            raise MaskingError(f"column {name!r} arrived as a multi-cell column but is planned as a simple one")
        cells = list(complex_column.cells)
        for slot, mask in column.cell_steps:
            for i, cell in enumerate(cells):
                masked = mask(cell)
                if masked is not cell:
                    cells[i] = masked
                    counts[slot] += 1
        out[name] = ComplexColumn(complex_column.deletion, tuple(cells))
    return complex_columns if out is None else MappingProxyType(out)


def _mask_bound(bound: Bound | None, plan: TablePlan, counts: list[int]) -> Bound | None:
    if bound is None:
        return None
    values = list(bound.values)
    for i, value in enumerate(values):
        column = plan.clustering[i] if i < len(plan.clustering) else None
        if column is not None and value is not None:
            values[i] = _mask_value(column, value, counts)
    return Bound(tuple(values), bound.inclusive)


_MASKED_PARTS = ("partition_key", "clustering", "cells", "complex", "range_start", "range_end")


def _compile_rebuild() -> Callable[..., ChangeEvent]:
    """``rebuild(event, *parts)``: a copy of ``event`` with its ``_MASKED_PARTS`` replaced.

    ``dataclasses.replace`` costs more than masking three columns, and even the frozen dataclass's
    own ``__init__`` (one ``object.__setattr__`` per field) costs twice this: a new object whose
    slots are set through their descriptors. Written out once from the dataclass's own field
    list, so a field added to ``ChangeEvent`` is carried over."""
    names = [f.name for f in fields(ChangeEvent)]
    missing = set(_MASKED_PARTS) - set(names)
    if missing or hasattr(ChangeEvent, "__post_init__"):  # pragma: no cover - keep in step with ChangeEvent
        raise ImportError("masking.engine copies ChangeEvent slot by slot: update _compile_rebuild")
    namespace: dict[str, Any] = {"_new": object.__new__, "ChangeEvent": ChangeEvent}
    lines = ["def rebuild(event, " + ", ".join(f"_{n}" for n in _MASKED_PARTS) + "):", "    new = _new(ChangeEvent)"]
    for name in names:
        namespace[f"_set_{name}"] = getattr(ChangeEvent, name).__set__
        lines.append(f"    _set_{name}(new, {f'_{name}' if name in _MASKED_PARTS else f'event.{name}'})")
    lines.append("    return new")
    exec("\n".join(lines), namespace)  # noqa: S102 - built from the dataclass's field names only
    rebuild: Callable[..., ChangeEvent] = namespace["rebuild"]
    return rebuild


_rebuild = _compile_rebuild()


def mask_event(plan: TablePlan, event: ChangeEvent, counts: list[int]) -> ChangeEvent:
    """``event`` with every planned column masked; ``counts[slot]`` grows per masked value.

    Unmasked events come back as the same object; masked ones share every unmasked part.
    """
    if not plan.columns:
        return event
    partition_key, clustering = event.partition_key, event.clustering
    if plan.key_columns:
        partition_key = _mask_key(partition_key, plan.key_columns, counts)
        clustering = _mask_key(clustering, plan.key_columns, counts)
    cells = _mask_cells(event.cells, plan.value_columns, counts) if event.cells else event.cells
    complex_columns = _mask_complex(event.complex, plan.columns, counts) if event.complex else event.complex
    range_start, range_end = event.range_start, event.range_end
    if event.operation == Operation.DELETE_RANGE and plan.key_columns:
        range_start = _mask_bound(range_start, plan, counts)
        range_end = _mask_bound(range_end, plan, counts)
    if (
        partition_key is event.partition_key
        and clustering is event.clustering
        and cells is event.cells
        and complex_columns is event.complex
        and range_start is event.range_start
        and range_end is event.range_end
    ):
        return event
    return _rebuild(event, partition_key, clustering, cells, complex_columns, range_start, range_end)


def range_survives_masking(plan: TablePlan, event: ChangeEvent) -> bool:
    """Whether a range deletion can still be applied after masking.

    Hashes do not keep order, so a destination can match a masked clustering column only by
    equality. A range is still exact if every masked clustering column sits before the first
    position where its two bounds differ (``DELETE … WHERE ck1 = 'x'`` over a masked ``ck1``
    is; ``ck1 > 'x'`` is not). The replicator must not apply an inexact one as if it were.
    """
    if event.operation != Operation.DELETE_RANGE:
        return True
    start = event.range_start.values if event.range_start is not None else ()
    end = event.range_end.values if event.range_end is not None else ()
    first_difference = 0
    while (
        first_difference < len(start)
        and first_difference < len(end)
        and start[first_difference] == end[first_difference]
    ):
        first_difference += 1
    # Positions past both bounds are unconstrained: their order never matters.
    return all(column is None for column in plan.clustering[first_difference : max(len(start), len(end))])
