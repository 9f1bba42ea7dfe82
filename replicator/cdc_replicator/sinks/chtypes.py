"""The CQL -> ClickHouse type mapping, and values converted to what clickhouse-connect inserts.

=====================================  ========================  ===================================
CQL type                               ClickHouse type           Notes
=====================================  ========================  ===================================
ascii, text, varchar                   String
blob                                   String                    raw bytes
boolean                                Bool
tinyint / smallint / int / bigint      Int8 / Int16 / Int32 / Int64
varint, decimal                        String                    exact decimal text
float / double                         Float32 / Float64
date                                   Date32                    years 1900-2299; others dead-letter
time                                   Int64                     nanoseconds since midnight
timestamp                              DateTime64(3, 'UTC')
uuid, timeuuid                         UUID
inet                                   String                    ``10.0.0.1``, ``::1``
duration, collections, tuple,          String (JSON)             ``cdc_replicator.cql.jsonmap``
vector, UDT
counter                                Int64 (view)              base table keeps replica shards
=====================================  ========================  ===================================

Key columns have the same types, never Nullable (ClickHouse sort keys).
"""

from __future__ import annotations

import datetime
from typing import Any

from cassandra.util import Date

from cdc_replicator.cql.types import CqlType
from cdc_replicator.sinks.pgtypes import Convert, json_value, time_value, timestamp_value

_TYPES: dict[str, str] = {
    "ascii": "String",
    "text": "String",
    "blob": "String",
    "boolean": "Bool",
    "tinyint": "Int8",
    "smallint": "Int16",
    "int": "Int32",
    "bigint": "Int64",
    "varint": "String",
    "decimal": "String",
    "float": "Float32",
    "double": "Float64",
    "date": "Date32",
    "time": "Int64",
    "timestamp": "DateTime64(3, 'UTC')",
    "uuid": "UUID",
    "timeuuid": "UUID",
    "inet": "String",
    "counter": "Int64",
}
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_DATE_MIN, _DATE_MAX = datetime.date(1900, 1, 1), datetime.date(2299, 12, 31)


def ch_type(cql: CqlType) -> str:
    if cql.multi_cell:
        return "String"
    return _TYPES.get(cql.kind, "String")


def _identity(value: Any) -> Any:
    return value


def _text(value: Any) -> Any:
    return None if value is None else str(value)


def _date(value: Any) -> Any:
    if isinstance(value, Date):
        value = value.date()
    if isinstance(value, datetime.date) and not _DATE_MIN <= value <= _DATE_MAX:
        raise ValueError(f"date {value} outside ClickHouse Date32's range")
    return value


_CONVERTERS: dict[str, Convert] = {
    "varint": _text,
    "decimal": _text,
    "inet": _text,
    "date": _date,
    "time": time_value,
    "timestamp": timestamp_value,
}


def converter(cql: CqlType) -> Convert:
    if cql.multi_cell or cql.kind not in _TYPES:
        return json_value
    return _CONVERTERS.get(cql.kind, _identity)


def key_default(cql: CqlType) -> Any:
    """The value a static row's clustering columns hold (sort keys cannot be NULL)."""
    kind = ch_type(cql)
    if kind in ("String",):
        return ""
    if kind == "UUID":
        return "00000000-0000-0000-0000-000000000000"
    if kind == "Bool":
        return False
    if kind == "Date32":
        return datetime.date(1970, 1, 1)
    if kind.startswith("DateTime64"):
        return _EPOCH
    return 0
