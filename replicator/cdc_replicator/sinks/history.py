"""Change-history rows: what TimescaleDB keeps for tables without a time column in their key.

One row per change event: its key, operation, newest write time and the change itself as
JSON (cells with their write times and TTLs, collection elements, row marker, deletions,
range bounds; ``cdc_replicator.types.jsonmap``). Rows are unique on (key, write time,
operation, content hash): a replay, or the same mutation arriving from another replica,
is the same row and adds nothing. (One row per event rather than per cell: five to ten
times fewer index insertions, and a cell's history is still one JSON path away.)
"""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Any

from cdc_replicator.events import ChangeEvent
from cdc_replicator.types.jsonmap import event_to_json, to_json

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_NOT_CHANGE = ("keyspace", "table", "table_id", "op", "position", "index", "partition_key", "clustering", "durable")
HistoryRow = tuple[datetime.datetime, int, str, str, str, str, str]
"""(write time, write time µs, key JSON, operation, change JSON, content hash, position)."""

COLUMNS = ("_write_time", "_ts", "_key", "_op", "_change", "_hash", "_position")


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def write_time(micros: int) -> datetime.datetime:
    return _EPOCH + datetime.timedelta(microseconds=micros)


def newest_timestamp(event: ChangeEvent) -> int:
    newest = 0
    if event.deletion is not None:
        newest = event.deletion.timestamp
    if event.liveness is not None and event.liveness.timestamp > newest:
        newest = event.liveness.timestamp
    for cell in event.cells.values():
        newest = max(newest, cell.timestamp)
    for column in event.complex.values():
        if column.deletion is not None:
            newest = max(newest, column.deletion.timestamp)
        for cell in column.cells:
            newest = max(newest, cell.timestamp)
    return newest


def history_row(event: ChangeEvent) -> HistoryRow:
    key: dict[str, Any] = {k: to_json(v) for k, v in event.partition_key.items()}
    key.update({k: to_json(v) for k, v in event.clustering.items()})
    full = event_to_json(event)
    change = {k: v for k, v in full.items() if k not in _NOT_CHANGE}
    if event.static:
        key["_static"] = True
    change_json = _dump(change)
    digest = hashlib.md5(change_json.encode(), usedforsecurity=False).hexdigest()
    ts = newest_timestamp(event)
    return (
        write_time(ts),
        ts,
        _dump(key),
        event.operation.value,
        change_json,
        digest,
        f"{event.position}#{event.index}",
    )
