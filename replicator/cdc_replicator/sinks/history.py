"""Change-history rows: what TimescaleDB keeps for tables without a time column in their key.

One row per fact an event states: a cell written or deleted, a collection element, a row
marker, a row/range/partition deletion, each with its Cassandra write time. Facts are
unique on (key, column, element, operation, write time), so replaying events adds nothing.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

from cdc_replicator.events import ChangeEvent, Operation
from cdc_replicator.sinks.merge import element_key
from cdc_replicator.types.jsonmap import to_json

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
HistoryRow = tuple[datetime.datetime, int, str, str, str, str, str | None, int | None, str]
"""(write time, write time µs, key JSON, column, element, operation, value JSON, ttl, position)."""

COLUMNS = ("_write_time", "_ts", "_key", "_column", "_element", "_op", "_value", "_ttl", "_position")


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def write_time(micros: int) -> datetime.datetime:
    return _EPOCH + datetime.timedelta(microseconds=micros)


def history_rows(event: ChangeEvent, kinds: dict[str, str]) -> Iterator[HistoryRow]:  # noqa: PLR0912 - a branch per fact
    """The facts of one event; ``kinds`` maps multi-cell columns to list/set/map/udt."""
    key: dict[str, Any] = {k: to_json(v) for k, v in event.partition_key.items()}
    key.update({k: to_json(v) for k, v in event.clustering.items()})
    if event.static:
        key["_static"] = True
    key_json = _dump(key)
    position = f"{event.position}#{event.index}"

    def row(ts: int, column: str, element: str, op: str, value: str | None, ttl: int | None) -> HistoryRow:  # noqa: PLR0917
        return (write_time(ts), ts, key_json, column, element, op, value, ttl, position)

    op = event.operation
    if op is Operation.DELETE_PARTITION and event.deletion is not None:
        yield row(event.deletion.timestamp, "", "", "delete_partition", None, None)
        return
    if op is Operation.DELETE_RANGE and event.deletion is not None:
        bounds = [
            None if b is None else {"values": to_json(b.values), "inclusive": b.inclusive}
            for b in (event.range_start, event.range_end)
        ]
        yield row(event.deletion.timestamp, "", _dump(bounds), "delete_range", None, None)
        return
    if event.deletion is not None:
        yield row(event.deletion.timestamp, "", "", "delete_row", None, None)
    if event.liveness is not None:
        yield row(event.liveness.timestamp, "", "", "insert", None, event.liveness.ttl)
    for name, cell in event.cells.items():
        if cell.deleted:
            yield row(cell.timestamp, name, "", "delete", None, None)
        else:
            yield row(cell.timestamp, name, "", "write", _dump(to_json(cell.value)), cell.ttl)
    for name, column in event.complex.items():
        kind = kinds.get(name, "list")
        if column.deletion is not None:
            yield row(column.deletion.timestamp, name, "", "delete_column", None, None)
        for cell in column.cells:
            element = element_key(kind, cell.path)
            if cell.deleted:
                yield row(cell.timestamp, name, element, "delete", None, None)
            else:
                value = to_json(cell.path) if kind == "set" else to_json(cell.value)
                yield row(cell.timestamp, name, element, "write", _dump(value), cell.ttl)
