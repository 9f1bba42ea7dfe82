"""The JSON mapping of CQL values and change events (what ``cdc-replicator dump`` prints).

=================================  ==================================================
CQL type                           JSON
=================================  ==================================================
ascii, text, varchar               string
tinyint, smallint, int, bigint,    number (integers are exact: varint may be huge)
varint, counter
float, double                      number; ``"NaN"``, ``"Infinity"``, ``"-Infinity"``
decimal                            string (exact, e.g. ``"3.14"``)
boolean                            true / false
blob, custom types                 string ``"0x…"`` (hex)
uuid, timeuuid                     string
inet                               string (``"10.0.0.1"``, ``"::1"``)
timestamp                          string ISO 8601 UTC with ms (``"2024-05-01T12:00:00.123Z"``);
                                   a number of ms if outside years 1-9999
date                               string ``"YYYY-MM-DD"`` (days since epoch if out of range)
time                               string ``"HH:MM:SS.nnnnnnnnn"``
duration                           object ``{"months": m, "days": d, "nanoseconds": n}``
list, set, tuple, vector           array (sets in Cassandra's order; tuple nulls as null)
map                                array of ``[key, value]`` pairs (keys need not be strings)
counter                            object ``{"total": n, "shards": [{"id", "clock", "count"}]}``:
                                   the leader replica's running total, see ``CounterValue``
UDT                                object by field name
null / empty non-text value        null
=================================  ==================================================
"""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
from typing import Any

from cassandra.util import Date, Duration, Time

from cdc_replicator.cql.values import CounterValue, CqlMap, UdtValue
from cdc_replicator.events import Bound, Cell, ChangeEvent, ComplexColumn, Deletion, Liveness


def to_json(value: Any) -> Any:  # noqa: PLR0911 - one branch per Python type
    """A JSON-compatible rendering of a decoded CQL value."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, CounterValue):
        return {"total": value.total, "shards": [{"id": str(i), "clock": c, "count": n} for i, c, n in value]}
    if isinstance(value, UdtValue):
        return {k: to_json(v) for k, v in value}
    if isinstance(value, CqlMap):
        return [[to_json(k), to_json(v)] for k, v in value]
    if isinstance(value, (tuple, list)):
        return [to_json(v) for v in value]
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, (decimal.Decimal, uuid.UUID, Date, Time)):
        return str(value)
    if isinstance(value, Duration):
        return {"months": value.months, "days": value.days, "nanoseconds": value.nanoseconds}
    return str(value)


def _deletion(deletion: Deletion | None) -> dict[str, int] | None:
    if deletion is None:
        return None
    return {"timestamp": deletion.timestamp, "local_deletion_time": deletion.local_deletion_time}


def _liveness(liveness: Liveness) -> dict[str, int | None]:
    out: dict[str, int | None] = {"timestamp": liveness.timestamp}
    if liveness.ttl is not None:
        out["ttl"] = liveness.ttl
        out["expires_at"] = liveness.expires_at
    return out


def _cell(cell: Cell) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if cell.path is not None:
        out["key"] = to_json(cell.path)
    if cell.deleted:
        out["deleted"] = True
        out["local_deletion_time"] = cell.local_deletion_time
    else:
        out["value"] = to_json(cell.value)
    out["timestamp"] = cell.timestamp
    if cell.ttl is not None:
        out["ttl"] = cell.ttl
        out["expires_at"] = cell.local_deletion_time
    return out


def _complex(column: ComplexColumn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if column.deletion is not None:
        out["deletion"] = _deletion(column.deletion)
    out["elements"] = [_cell(c) for c in column.cells]
    return out


def _bound(bound: Bound | None) -> dict[str, Any] | None:
    if bound is None:
        return None
    return {"values": [to_json(v) for v in bound.values], "inclusive": bound.inclusive}


def event_to_json(event: ChangeEvent) -> dict[str, Any]:
    """One change event as a JSON object (keys with nothing to say are left out)."""
    out: dict[str, Any] = {
        "keyspace": event.keyspace,
        "table": event.table,
        "op": event.operation.value,
        "position": str(event.position),
        "index": event.index,
        "partition_key": {k: to_json(v) for k, v in event.partition_key.items()},
    }
    if event.clustering:
        out["clustering"] = {k: to_json(v) for k, v in event.clustering.items()}
    if event.static:
        out["static"] = True
    out.update(change_to_json(event))
    if not event.durable:
        out["durable"] = False
    out["table_id"] = str(event.table_id)
    return out


def change_to_json(event: ChangeEvent) -> dict[str, Any]:
    """What an event changes, without where it comes from or which row it is: row marker,
    deletion, range bounds, cells and collections (the parts ``event_to_json`` shows of them)."""
    out: dict[str, Any] = {}
    if event.liveness is not None:
        out["liveness"] = _liveness(event.liveness)
    if event.deletion is not None:
        out["deletion"] = _deletion(event.deletion)
    if event.range_start is not None or event.range_end is not None:
        out["range"] = {"start": _bound(event.range_start), "end": _bound(event.range_end)}
    if event.cells:
        out["cells"] = {name: _cell(cell) for name, cell in event.cells.items()}
    if event.complex:
        out["collections"] = {name: _complex(column) for name, column in event.complex.items()}
    return out
