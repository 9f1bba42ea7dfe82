"""The per-event hot path: a compiled ``TablePlan`` applied to change events.

``mask_event(plan, event, counts)`` masks the partition key, clustering, simple cells,
collection and UDT cells and range bounds of one event, adding one to ``counts[slot]`` per
masked value (``audit.py`` turns the tallies into metrics once per batch). Events of tables
with nothing to mask come back as they are; others are copied only where masked, sharing
every unmasked part. ``range_survives_masking`` tells whether a range deletion is still exact
once its clustering bounds are masked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from types import MappingProxyType
from typing import Any, TypeVar

from cdc_replicator.events import Bound, Cell, ChangeEvent, ComplexColumn, Operation
from cdc_replicator.masking.actions import Mask
from cdc_replicator.masking.plans import ColumnPlan, MaskingError, TablePlan

T = TypeVar("T")


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
    raise ImportError("masking.apply rebuilds Cell positionally: update _mask_cells for its new fields")


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
        raise ImportError("masking.apply copies ChangeEvent slot by slot: update _compile_rebuild")
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
