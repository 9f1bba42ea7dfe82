"""The CQL -> Postgres type mapping, and values converted to what asyncpg sends for it.

=====================================  =================  ==========================================
CQL type                               Postgres type      Notes
=====================================  =================  ==========================================
ascii, text, varchar                   text               key columns ``COLLATE "C"``: Cassandra
                                                          orders text by UTF-8 bytes
blob                                   bytea
boolean                                boolean
tinyint, smallint                      smallint
int                                    integer
bigint                                 bigint
varint, decimal                        numeric            exact
float                                  real
double                                 double precision
date                                   date               dates outside Postgres's range go to
                                                          the dead-letter table
time                                   bigint             nanoseconds since midnight (Postgres
                                                          ``time`` keeps only microseconds)
timestamp                              timestamptz        UTC, millisecond values
uuid, timeuuid                         uuid
inet                                   inet
duration                               jsonb              ``{"months", "days", "nanoseconds"}``
counter                                bigint (view)      base table keeps per-replica shards
frozen collections, tuple, vector,     jsonb              ``cdc_replicator.cql.jsonmap``: lists,
frozen UDT                                                sets, tuples, vectors as arrays, maps as
                                                          ``[key, value]`` pairs, UDTs as objects
non-frozen list / set / map / UDT      jsonb (view)       the base table keeps one LWW register per
                                                          element; the view renders the JSON above
=====================================  =================  ==========================================

Empty collections are NULL, as Cassandra returns them.
"""

from __future__ import annotations

import datetime
import decimal
import json
from collections.abc import Callable
from typing import Any

from cassandra.util import Date, Time

from cdc_replicator.cql.jsonmap import to_json
from cdc_replicator.cql.types import CqlType

Convert = Callable[[Any], Any]

_SCALAR_TYPES: dict[str, str] = {
    "ascii": "text",
    "text": "text",
    "blob": "bytea",
    "boolean": "boolean",
    "tinyint": "smallint",
    "smallint": "smallint",
    "int": "integer",
    "bigint": "bigint",
    "varint": "numeric",
    "decimal": "numeric",
    "float": "real",
    "double": "double precision",
    "date": "date",
    "time": "bigint",
    "timestamp": "timestamptz",
    "uuid": "uuid",
    "timeuuid": "uuid",
    "inet": "inet",
    "counter": "bigint",
}
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def pg_type(cql: CqlType, key: bool = False) -> str:
    """The Postgres column type holding values of ``cql``."""
    if cql.multi_cell:
        return "jsonb"
    name = _SCALAR_TYPES.get(cql.kind, "jsonb")
    if key and name == "text":
        return 'text COLLATE "C"'
    return name


def json_text(value: Any) -> str:
    """A value as jsonb input text (asyncpg takes jsonb as text)."""
    return json.dumps(to_json(value), ensure_ascii=False, separators=(",", ":"))


def _identity(value: Any) -> Any:
    return value


def _varint(value: Any) -> Any:
    return None if value is None else decimal.Decimal(value)


def _date(value: Any) -> Any:
    if isinstance(value, Date):
        return value.date()  # raises ValueError outside Python's years 1-9999: dead letter
    return value


def time_value(value: Any) -> Any:
    """CQL time (ns since midnight) as nanoseconds: Postgres and ClickHouse keep it as an integer."""
    if isinstance(value, Time):
        return value.nanosecond_time
    return value


def timestamp_value(value: Any) -> Any:
    """CQL timestamp as an aware datetime, or past datetime's range from its ms since the epoch."""
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value
    if isinstance(value, int):  # out of datetime's range: ms since the epoch
        return _EPOCH + datetime.timedelta(milliseconds=value)
    return value


def json_value(value: Any) -> Any:
    """A composite value as JSON text; an empty collection is no value, as in Cassandra."""
    if value is None or (isinstance(value, tuple) and len(value) == 0):
        return None
    return json_text(value)


_CONVERTERS: dict[str, Convert] = {
    "varint": _varint,
    "date": _date,
    "time": time_value,
    "timestamp": timestamp_value,
}


def converter(cql: CqlType) -> Convert:
    """The function turning a decoded value of ``cql`` into what asyncpg sends for ``pg_type(cql)``."""
    if pg_type(cql) == "jsonb":
        return json_value
    return _CONVERTERS.get(cql.kind, _identity)
