"""Masking rules against a table's schema: which rules apply to a column, what they turn its
type into, and every reason a rule cannot apply (the load-time checks).

``check_policy`` runs these checks over every table the pipeline replicates, without keys,
so the replicator refuses a bad policy before it reads a byte; ``compile_table``
(``plans.py``) runs them again per table before it binds the masks.

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
from collections.abc import Iterable
from dataclasses import replace

from cdc_replicator.contract.policy import DETERMINISTIC_INJECTIVE, Action, MaskingPolicySpec, MaskingRule
from cdc_replicator.cql.types import CqlType
from cdc_replicator.masking.actions import TEXT, TEXT_KINDS
from cdc_replicator.schema.model import ColumnDef, TableSchema

PRIMARY_KEY_KINDS = frozenset({"partition_key", "clustering"})


class PolicyError(ValueError):
    """The policy cannot apply to the tables as they are; ``problems`` names each rule and column."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("masking policy rejected:\n  - " + "\n  - ".join(problems))


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


def keyed_step(step: str) -> str | None:
    """The map key of a ``value[<key>]`` step (the value under one key), else None."""
    found = _KEYED_VALUE.match(step)
    return None if found is None else found.group(1)


def _nesting(path: Iterable[str]) -> tuple[str, ...]:
    """``path`` with ``value[k]`` split into ``value``, ``[k]``: what lies inside what, for precedence."""
    out: list[str] = []
    for step in path:
        key = keyed_step(step)
        out.extend(("value", f"[{key}]") if key is not None else (step,))
    return tuple(out)


def path_step(cql_type: CqlType, step: str) -> tuple[int, CqlType, bool]:
    """One path step into ``cql_type``: ``(parameter index, child type, child identifies an element)``."""
    kind = cql_type.kind
    if kind in ("list", "vector") and step == "element":
        return 0, cql_type.params[0], False
    if kind == "set" and step == "element":
        return 0, cql_type.params[0], True
    if kind == "map" and step in ("key", "value"):
        return (0, cql_type.params[0], True) if step == "key" else (1, cql_type.params[1], False)
    if kind == "map" and keyed_step(step) is not None:
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


def type_at(cql_type: CqlType, path: tuple[str, ...]) -> tuple[CqlType, bool]:
    """The type at ``path`` and whether any step on the way identifies an element."""
    identifies = False
    for step in path:
        _, cql_type, key_like = path_step(cql_type, step)
        identifies = identifies or key_like
    return cql_type, identifies


def _retype(cql_type: CqlType, path: tuple[str, ...], leaf_type: CqlType) -> CqlType:
    """``cql_type`` with the type at ``path`` replaced by ``leaf_type``."""
    if not path:
        return leaf_type
    index, child, _ = path_step(cql_type, path[0])
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
        leaf_type, _ = type_at(source_type, path)
        result = _retype(result, path, _result_type(rule, leaf_type))
    return result


def _problem(rule: MaskingRule, column: ColumnDef) -> str | None:  # noqa: PLR0911 - one return per reason
    """Why ``rule`` cannot mask ``column``, or None if it can."""
    path = tuple(rule.match.path)
    try:
        leaf_type, identifies = type_at(column.type, path)
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
    if any(keyed_step(step) is not None for step in path) and not (
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


def all_columns(table: TableSchema) -> list[ColumnDef]:
    seen: dict[str, ColumnDef] = {}
    for column in (*table.partition_key, *table.clustering, *table.columns.values()):
        seen.setdefault(column.name, column)
    return list(seen.values())


def check_table(spec: MaskingPolicySpec, table: TableSchema, key_names: Iterable[str]) -> list[str]:
    """Every reason ``spec`` cannot apply to ``table`` (empty if it can). Needs key names, not keys."""
    available = set(key_names)
    problems: list[str] = []
    for column in all_columns(table):
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
        for column in all_columns(table):
            used.update(r.name for r in spec.rules if rule_matches(r, table.keyspace, table.name, column.name))
    return [rule.name for rule in spec.rules if rule.name not in used]
