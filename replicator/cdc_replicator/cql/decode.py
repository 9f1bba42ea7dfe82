"""Decoders from Cassandra's serialized value bytes to Python values.

One decoder function is built (and cached) per type. Scalars use cassandra-driver's own
type classes where Python has no direct equivalent (decimal, date, time, inet, duration,
timestamp), so values look exactly like what the driver returns for a SELECT; composite
values are decoded here, because their serialized form inside a frozen value is Cassandra's
internal one (``int32`` lengths, ``-1`` for null) and because results must be hashable.

An empty byte string is a legal value for any type in Cassandra (e.g. ``int`` set from an
empty blob); it decodes to ``""`` or ``b""`` for text and blob types and to None otherwise.
"""

from __future__ import annotations

import datetime
import decimal
import struct
import uuid
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from cassandra import cqltypes

from cdc_replicator.cql.types import CqlType
from cdc_replicator.cql.values import CounterShard, CounterValue, CqlMap, UdtValue
from cdc_replicator.cql.vint import read_uvint

Decoder = Callable[[bytes], Any]
PROTOCOL_VERSION = 4

_INT32 = struct.Struct(">i")
_FLOAT = struct.Struct(">f")
_DOUBLE = struct.Struct(">d")
_from_bytes = int.from_bytes


def _signed(data: bytes) -> int | None:
    return _from_bytes(data, "big", signed=True) if data else None


def _text(data: bytes) -> str:
    return data.decode("utf-8")


def _blob(data: bytes) -> bytes:
    return bytes(data)


def _boolean(data: bytes) -> bool | None:
    return data[0] != 0 if data else None


def _float(data: bytes) -> float | None:
    return _FLOAT.unpack(data)[0] if data else None


def _double(data: bytes) -> float | None:
    return _DOUBLE.unpack(data)[0] if data else None


_new = object.__new__
_set = object.__setattr__
_UUID = uuid.UUID
_UNKNOWN_SAFETY = uuid.SafeUUID.unknown


def _uuid(data: bytes) -> uuid.UUID | None:
    if not data:
        return None
    # uuid.UUID(bytes=...) validates its arguments at length; building it directly is
    # several times faster (UUID is immutable through these same two slots).
    value = _new(_UUID)
    _set(value, "int", _from_bytes(data))
    _set(value, "is_safe", _UNKNOWN_SAFETY)
    return value


_EPOCH = datetime.datetime(1970, 1, 1)  # naive UTC, like the driver's values
_timedelta = datetime.timedelta


def _timestamp(data: bytes) -> Any:
    """Milliseconds since the epoch -> naive UTC datetime, exactly.

    (cassandra-driver goes through a float and can be 1 µs off, e.g. for 2246-07-07
    14:57:35.508 it returns ...35.507999.)
    """
    if not data:
        return None
    millis = _from_bytes(data, "big", signed=True)
    try:
        return _EPOCH + _timedelta(milliseconds=millis)
    except OverflowError:
        # Outside Python's datetime range: keep Cassandra's milliseconds since the epoch.
        return millis


def _decimal(data: bytes) -> decimal.Decimal | None:
    """``int32 scale | varint unscaled`` (what the driver does, without its per-byte loop)."""
    if not data:
        return None
    scale = _from_bytes(data[:4], "big", signed=True)
    unscaled = _from_bytes(data[4:], "big", signed=True)
    return decimal.Decimal(f"{unscaled}E{-scale}")


def _driver(cls: Any) -> Decoder:
    deserialize = cls.deserialize

    def decode(data: bytes) -> Any:
        return deserialize(bytes(data), PROTOCOL_VERSION) if data else None

    return decode


def counter_value(data: bytes) -> CounterValue:
    """A CounterContext (``db/context/CounterContext``) as its shards.

    Layout: ``int16 header_count``, ``header_count`` int16 indexes (of local/remote
    shards), then 32-byte shards ``counter_id(16) | clock(int64) | count(int64)``.
    """
    if not data:
        return CounterValue(())
    header = _from_bytes(data[:2], "big", signed=True)
    start = 2 + 2 * abs(header)
    shards = []
    for offset in range(start, len(data), 32):
        counter_id = uuid.UUID(bytes=bytes(data[offset : offset + 16]))
        clock = _from_bytes(data[offset + 16 : offset + 24], "big", signed=True)
        count = _from_bytes(data[offset + 24 : offset + 32], "big", signed=True)
        shards.append(CounterShard(counter_id, clock, count))
    return CounterValue(shards)


_SCALARS: dict[str, Decoder] = {
    "ascii": _text,
    "text": _text,
    "blob": _blob,
    "boolean": _boolean,
    "tinyint": _signed,
    "smallint": _signed,
    "int": _signed,
    "bigint": _signed,
    "varint": _signed,
    "counter": counter_value,
    "float": _float,
    "double": _double,
    "uuid": _uuid,
    "timeuuid": _uuid,
    "timestamp": _timestamp,
    "decimal": _decimal,
    "date": _driver(cqltypes.SimpleDateType),
    "time": _driver(cqltypes.TimeType),
    "inet": _driver(cqltypes.InetAddressType),
    "duration": _driver(cqltypes.DurationType),
    "empty": lambda _data: None,
    "custom": _blob,
}


def _elements(data: bytes, pos: int, count: int) -> tuple[list[bytes | None], int]:
    """``count`` values each framed as ``int32 length | bytes`` (length < 0: null)."""
    out: list[bytes | None] = []
    unpack = _INT32.unpack_from
    for _ in range(count):
        (length,) = unpack(data, pos)
        pos += 4
        if length < 0:
            out.append(None)
        else:
            out.append(data[pos : pos + length])
            pos += length
    return out, pos


def _maybe(decode: Decoder, raw: bytes | None) -> Any:
    return None if raw is None else decode(raw)


@lru_cache(maxsize=4096)
def decoder_for(cql_type: CqlType) -> Decoder:
    """The function turning a serialized value of ``cql_type`` into a Python value.

    For multi-cell types this decodes the *frozen* serialized form (what a frozen column, a
    UDT field, or a collection element holds); multi-cell columns arrive cell by cell and
    are decoded element by element with the parameter types' decoders.
    """
    kind = cql_type.kind
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind in ("list", "set"):
        element = decoder_for(cql_type.params[0])

        def collection(data: bytes) -> tuple[Any, ...] | None:
            if not data:
                return None
            (count,) = _INT32.unpack_from(data, 0)
            raws, _ = _elements(data, 4, count)
            return tuple(_maybe(element, raw) for raw in raws)

        return collection
    if kind == "map":
        key_decoder, value_decoder = decoder_for(cql_type.params[0]), decoder_for(cql_type.params[1])

        def mapping(data: bytes) -> CqlMap | None:
            if not data:
                return None
            (count,) = _INT32.unpack_from(data, 0)
            raws, _ = _elements(data, 4, 2 * count)
            return CqlMap(
                (_maybe(key_decoder, raws[i]), _maybe(value_decoder, raws[i + 1])) for i in range(0, len(raws), 2)
            )

        return mapping
    if kind in ("tuple", "udt"):
        decoders = [decoder_for(p) for p in cql_type.params]
        names = cql_type.fields

        def composite(data: bytes) -> Any:
            if not data:
                return None
            # Values written before fields were added to a UDT hold fewer fields: missing = null.
            values: list[Any] = []
            pos = 0
            unpack = _INT32.unpack_from
            for decode in decoders:
                if pos >= len(data):
                    values.append(None)
                    continue
                (length,) = unpack(data, pos)
                pos += 4
                if length < 0:
                    values.append(None)
                else:
                    values.append(decode(data[pos : pos + length]))
                    pos += length
            if kind == "udt":
                return UdtValue(zip(names, values, strict=True))
            return tuple(values)

        return composite
    if kind == "vector":
        element_type = cql_type.params[0]
        element = decoder_for(element_type)
        width = element_type.fixed_width
        dimension = cql_type.dimension

        def vector(data: bytes) -> tuple[Any, ...] | None:
            if not data:
                return None
            if width is not None:
                return tuple(element(data[i * width : (i + 1) * width]) for i in range(dimension))
            out = []
            pos = 0
            for _ in range(dimension):
                length, pos = read_uvint(data, pos)
                out.append(element(data[pos : pos + length]))
                pos += length
            return tuple(out)

        return vector
    raise ValueError(f"no decoder for CQL type {cql_type}")
