"""Change-history rows: what TimescaleDB keeps for tables without a time column in their key.

One row per change: its key, operation, newest write time and the change itself as JSON
(cells with their write times and TTLs, collection elements, row marker, deletions, range
bounds; ``cdc_replicator.cql.jsonmap``). (One row per change rather than per cell: five to
ten times fewer index insertions, and a cell's history is still one JSON path away.)

Rows are unique on (key, write time, operation, identity hash), and a row that arrives again
is *merged* into the one already there (``MERGE_FUNCTION``), never added. The identity hash
covers only what tells two changes at the same key, time and operation apart (a range
deletion's bounds), not the content: the content of one change depends on *when* it is
decoded. A reader that does not yet know of an ``ALTER TABLE … DROP`` still shows the
dropped column's older cells, one that knows hides them (Cassandra's rule), so two replicas,
two replicators or a replay across the DROP decode the same mutation to different JSON.
The merge keeps the union of cells and collections per column, so the row ends up the same
whatever the order and number of deliveries. Two *different* writes to one row at the same
write time (client-supplied timestamps) share one row too, as Cassandra merges them; for a
column both set, the row keeps one of the two values (chosen by text order, so replicas
agree), and for a collection column both changed, the elements of one of them.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Any

from cdc_replicator.cql.jsonmap import change_to_json, to_json
from cdc_replicator.events import ChangeEvent

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
HistoryRow = tuple[datetime.datetime, int, str, str, str, str, str]
"""(write time, write time µs, key JSON, operation, change JSON, identity hash, position)."""

COLUMNS = ("_write_time", "_ts", "_key", "_op", "_change", "_hash", "_position")
MERGE_FUNCTION = "cdc_history_merge"


def _union(first: str, second: str) -> str:
    """SQL: ``second`` over ``first``, top level and within cells and collections (per column)."""
    parts = "".join(
        f"\n  || CASE WHEN {first} ? '{part}' OR {second} ? '{part}' THEN jsonb_build_object('{part}', "
        f"coalesce({first}->'{part}', '{{}}') || coalesce({second}->'{part}', '{{}}')) ELSE '{{}}'::jsonb END"
        for part in ("cells", "collections")
    )
    return f"({first} || {second}){parts}"


MERGE_FUNCTION_BODY = f"SELECT CASE WHEN a::text <= b::text THEN {_union('a', 'b')}\nELSE {_union('b', 'a')} END"
"""SQL body of ``cdc_history_merge(a jsonb, b jsonb)``: the union of two JSON changes of one
row, per cell and per collection column; where both hold a column, the value of the one whose
text sorts last wins, so the result does not depend on which arrived first."""


def _dump(value: Any) -> str:
    # Unsorted: the columns are jsonb, which orders keys itself, and the identity hash covers
    # range bounds only, whose keys are always built in one order.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def write_time(micros: int) -> datetime.datetime:
    return _EPOCH + datetime.timedelta(microseconds=micros)


def _hide_values(change: dict[str, Any], hidden: frozenset[str]) -> None:
    cells = change.get("cells")
    if cells:
        for name in hidden & cells.keys():
            if "value" in cells[name]:
                cells[name]["value"] = None
    collections = change.get("collections")
    if collections:
        for name in hidden & collections.keys():
            for element in collections[name]["elements"]:
                if "value" in element:
                    element["value"] = None


def history_row(event: ChangeEvent, hidden: frozenset[str] = frozenset()) -> HistoryRow:
    """The history row of ``event``; ``hidden`` columns (masked by ``null``, holding presence flags
    or zeroed counter shards) show null values, as the current-state view does, with their write
    times, TTLs and (for lists and UDTs) element keys."""
    key: dict[str, Any] = {k: to_json(v) for k, v in event.partition_key.items()}
    key.update({k: to_json(v) for k, v in event.clustering.items()})
    change = change_to_json(event)
    if hidden:
        _hide_values(change, hidden)
    if event.static:
        key["_static"] = True
        change["static"] = True
    change_json = _dump(change)
    identity = _dump(change.get("range"))
    digest = hashlib.md5(identity.encode(), usedforsecurity=False).hexdigest()
    ts = event.newest_timestamp()
    return (
        write_time(ts),
        ts,
        _dump(key),
        event.operation.value,
        change_json,
        digest,
        f"{event.position}#{event.index}",
    )
