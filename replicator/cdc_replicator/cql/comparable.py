"""Cassandra's two byte orders for decoded values: byte-comparable forms and serialized bytes.

Destinations must order and break ties exactly as Cassandra does, and they can only compare
plain bytes (``bytea`` in Postgres, ``String`` in ClickHouse, both ``memcmp``). Two encoders per
CQL type, built once and cached, turn a decoded value (``cdc_replicator.cql.decode``) back into
bytes:

``comparable_for(type)``
    Cassandra 5.0's byte-comparable form (``AbstractType.asComparableBytes``, the encodings of
    ``utils/bytecomparable/ByteComparable.md``): unsigned byte order of the forms equals
    ``AbstractType.compare`` of the values, and the forms are weakly prefix-free, so they can be
    joined into a clustering key. ``None`` (an empty value: the decoder shows empty non-text
    values as None) has no form, as in Cassandra (a *null source*).
``ClusteringKey``
    ``ClusteringComparator.asByteComparable``: a whole clustering prefix with its bound kind as
    ONE comparable byte string (``ClusteringPrefix.Kind.asByteComparableValue`` terminators), DESC
    (``ReversedType``) components inverted, so a row lies inside a range tombstone exactly when
    ``start < row < end`` byte-wise. Bounds never equal a row's form (different terminators).
``serializer_for(type)``
    The value's serialized bytes (``TypeSerializer.serialize``), which ``Cells.resolveRegular``
    compares, unsigned, to break ties between cells with equal write timestamps.

Varints use the encoding of ``ByteComparable.md`` (version OSS41, whose order OSS50 keeps); the
other types are byte-identical to OSS50. Duration and counter are not comparable (Cassandra
refuses them in primary keys). Everything here is pure, allocation-light per value, and checked
against a real Cassandra's clustering order by ``tests/integration/test_comparable_oracle.py``.
"""

from __future__ import annotations

import datetime
import decimal
import fractions
import math
import re
import socket
import struct
import uuid
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from cdc_replicator.cql.types import CqlType
from cdc_replicator.cql.vint import encode_uvint, encode_vint

Encode = Callable[[Any], bytes | None]
Serialize = Callable[[Any], bytes]

# ByteSource's separators (utils/bytecomparable/ByteSource.java).
NEXT_COMPONENT = 0x40
NEXT_COMPONENT_NULL = 0x3F
NEXT_COMPONENT_NULL_REVERSED = 0x41
TERMINATOR = 0x38
LT_NEXT_COMPONENT = 0x20
GT_NEXT_COMPONENT = 0x60

_NEXT = bytes([NEXT_COMPONENT])
_NULL = bytes([NEXT_COMPONENT_NULL])
_NULL_REVERSED = bytes([NEXT_COMPONENT_NULL_REVERSED])
_INVERT = bytes(255 - i for i in range(256))
_ZEROS = re.compile(b"\x00+")


class NotComparableError(TypeError):
    """A type Cassandra never compares (duration, counter): it cannot be a key."""


def _escape(data: bytes) -> bytes:
    """``ByteSource.of`` (AbstractReinterpreter): zeros escaped, ending in an escape byte.

    A run of n zeros becomes ``00``, ``FE`` n-1 times, ``FF``; the value ends in ``00``, or, where it already
    ends in a zero, that run's last ``FF`` becomes ``FE``."""
    if b"\x00" not in data:
        return data + b"\x00"
    out = _ZEROS.sub(lambda m: b"\x00" + b"\xfe" * (len(m.group()) - 1) + b"\xff", data)
    if data[-1] == 0:
        return out[:-1] + b"\xfe"
    return out + b"\x00"


def invert(data: bytes) -> bytes:
    """``ReversedType.asComparableBytes``: every byte flipped."""
    return data.translate(_INVERT)


# -- scalars ------------------------------------------------------------------------------------


def _text(value: Any) -> bytes | None:
    """UTF8Type / AsciiType: the UTF-8 bytes, escaped (an empty string still has a form)."""
    return _escape(value.encode("utf-8")) if value is not None else None


def _blob(value: Any) -> bytes | None:
    """BytesType: the bytes, escaped."""
    return _escape(bytes(value)) if value is not None else None


def _boolean(value: Any) -> bytes | None:
    """BooleanType: one byte, 0 or 1."""
    return None if value is None else (b"\x01" if value else b"\x00")


def _signed(width: int) -> Encode:
    """ByteType / ShortType / Int32Type / LongType: big-endian with the sign bit flipped
    (``ByteSource.optionalSignedFixedLengthNumber``)."""
    flip = 1 << (8 * width - 1)

    def encode(value: Any) -> bytes | None:
        return None if value is None else (value + flip).to_bytes(width, "big")

    return encode


_encode_int64 = _signed(8)


def _float(fmt: str) -> Encode:
    """FloatType / DoubleType (``SignedFixedLengthFloat``): positive: sign bit set; negative: all
    bits flipped. -0.0 sorts before 0.0 and NaN after +Infinity, as ``Double.compare``, which is
    what orders clustering keys: every NaN is the canonical one there (``doubleToLongBits``), so
    here too (a NaN with its sign bit set would otherwise sort first)."""
    packer = struct.Struct(fmt)
    width = packer.size
    top = 1 << (8 * width - 1)
    mask = (1 << (8 * width)) - 1
    nan = (0x7FC00000 if width == 4 else 0x7FF8000000000000) | top

    def encode(value: Any) -> bytes | None:
        if value is None:
            return None
        if math.isnan(value):
            return nan.to_bytes(width, "big")
        bits = int.from_bytes(packer.pack(value), "big")
        bits = bits ^ mask if bits & top else bits | top
        return bits.to_bytes(width, "big")

    return encode


def _varint(value: Any) -> bytes | None:
    """IntegerType: sign and length first (``0x80 + len - 1`` positive, ``0x7F - (len - 1)``
    negative, one ``FF``/``00`` per 128 bytes beyond), then the digits without sign bytes (a
    positive number's magnitude; a negative one's two's complement with leading ``FF`` cut)."""
    if value is None:
        return None
    negative = value < 0
    length = max(1, (((-value - 1) if negative else value).bit_length() + 7) // 8)
    digits = (value + (1 << (8 * length)) if negative else value).to_bytes(length, "big")
    prefix = bytearray()
    while length >= 128:
        prefix.append(0x00 if negative else 0xFF)
        length -= 128
    prefix.append((0x7F - (length - 1)) & 0xFF if negative else (0x80 + length - 1) & 0xFF)
    out: bytes = bytes(prefix) + digits
    return out


def _decimal(value: Any) -> bytes | None:
    """DecimalType: zero is ``80``; otherwise sign and base-100 exponent length in one byte
    (``0x80``/``0x00`` + ``0x40 ± length``), the exponent (negated for negative numbers) in that
    many two's complement bytes, then base-100 mantissa digits as ``0x80 + digit`` (the first one
    signed, rounded towards -inf), then ``00``. Scale does not matter: 1.0 and 1.00 are equal."""
    if value is None:
        return None
    value = decimal.Decimal(value)
    if value.is_zero():
        return b"\x80"
    sign, digit_tuple, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    unscaled = int("".join(map(str, digit_tuple)))
    precision = len(str(unscaled))
    scale = -exponent
    # Base-100 exponent e with 0.01 <= |value| / 100**e < 1: ceil((precision - scale) / 2).
    e10 = precision - scale
    e100 = -((-e10) // 2)
    exact = fractions.Fraction(-unscaled if sign else unscaled) * fractions.Fraction(10) ** -scale
    mantissa = exact / fractions.Fraction(100) ** e100
    negative = bool(sign)
    modulated = -e100 if negative else e100
    magnitude = abs(modulated)
    exp_length = (magnitude.bit_length() + 7) // 8
    header = (0x00 if negative else 0x80) + 0x40 + (exp_length if modulated >= 0 else -exp_length)
    out = bytearray([header])
    if exp_length:
        out += (modulated % (1 << (8 * exp_length))).to_bytes(exp_length, "big")
    while True:
        scaled = mantissa * 100
        digit = scaled.numerator // scaled.denominator  # floor, also for negatives
        out.append((0x80 + digit) & 0xFF)
        mantissa = scaled - digit
        if mantissa == 0:
            break
    out.append(0x00)
    return bytes(out)


def _uuid_value(value: Any) -> int:
    return value.int if isinstance(value, uuid.UUID) else uuid.UUID(str(value)).int


def _timeuuid(value: Any) -> bytes | None:
    """TimeUUIDType: the 60-bit timestamp first (``time_hi_and_version``, ``time_mid``,
    ``time_low``), then the clock sequence and node as *signed* bytes (each byte's top bit
    flipped): ``minTimeuuid`` (``80…``) sorts before ``maxTimeuuid`` (``7f…``) at equal times."""
    if value is None:
        return None
    raw = _uuid_value(value).to_bytes(16, "big")
    return raw[6:8] + raw[4:6] + raw[0:4] + (int.from_bytes(raw[8:], "big") ^ 0x8080808080808080).to_bytes(8, "big")


def _uuid(value: Any) -> bytes | None:
    """UUIDType: the version first; version 1 then by timestamp (as TimeUUIDType), any other
    version by its remaining digits; the low 64 bits unsigned."""
    if value is None:
        return None
    raw = _uuid_value(value).to_bytes(16, "big")
    msb = int.from_bytes(raw[:8], "big")
    version = (msb >> 12) & 0xF
    if version == 1:
        high = raw[6:8] + raw[4:6] + raw[0:4]
    else:
        reordered = (version << 60) | ((msb >> 4) & 0x0FFF_FFFF_FFFF_F000) | (msb & 0xFFF)
        high = reordered.to_bytes(8, "big")
    return high + raw[8:]


_EPOCH = datetime.datetime(1970, 1, 1)
_EPOCH_DATE = datetime.date(1970, 1, 1)


def timestamp_millis(value: Any) -> int:
    """A decoded timestamp (naive UTC datetime, aware datetime, or ms outside datetime's range) as
    milliseconds. Rounded to the nearest: the decoder's values are exact, but cassandra-driver's go
    through a float and can be 1 µs off (a snapshot reads rows through the driver)."""
    if isinstance(value, int):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    delta = value - _EPOCH
    micros: int = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return (micros + 500) // 1000


def _timestamp(value: Any) -> bytes | None:
    """TimestampType: signed milliseconds, sign bit flipped."""
    return None if value is None else _encode_int64(timestamp_millis(value))


def _date_days(value: Any) -> int:
    if hasattr(value, "days_from_epoch"):
        days: int = value.days_from_epoch
        return days
    if isinstance(value, datetime.date):
        return (value - _EPOCH_DATE).days
    return int(value)


def _date(value: Any) -> bytes | None:
    """SimpleDateType: unsigned days with the epoch at 2^31, as serialized."""
    return None if value is None else (_date_days(value) + (1 << 31)).to_bytes(4, "big")


def _time_nanos(value: Any) -> int:
    if hasattr(value, "nanosecond_time"):
        nanos: int = value.nanosecond_time
        return nanos
    if isinstance(value, datetime.time):
        return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000_000 + value.microsecond * 1000
    return int(value)


def _time(value: Any) -> bytes | None:
    """TimeType: signed nanoseconds since midnight, sign bit flipped."""
    return None if value is None else _encode_int64(_time_nanos(value))


def _inet_bytes(value: Any) -> bytes:
    text = str(value)
    return socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)


def _inet(value: Any) -> bytes | None:
    """InetAddressType: the 4 or 16 address bytes, escaped (so IPv4 compares by bytes with IPv6)."""
    return None if value is None else _escape(_inet_bytes(value))


def _not_comparable(kind: str) -> Encode:
    def encode(value: Any) -> bytes | None:
        raise NotComparableError(f"CQL type {kind} has no order in Cassandra (it cannot be a key)")

    return encode


_SCALARS: dict[str, Encode] = {
    "ascii": _text,
    "text": _text,
    "blob": _blob,
    "custom": _blob,
    "boolean": _boolean,
    "tinyint": _signed(1),
    "smallint": _signed(2),
    "int": _signed(4),
    "bigint": _encode_int64,
    "varint": _varint,
    "decimal": _decimal,
    "float": _float(">f"),
    "double": _float(">d"),
    "uuid": _uuid,
    "timeuuid": _timeuuid,
    "timestamp": _timestamp,
    "date": _date,
    "time": _time,
    "inet": _inet,
    "empty": lambda _value: None,
    "duration": _not_comparable("duration"),
    "counter": _not_comparable("counter"),
}


def _sequence(parts: Sequence[bytes | None], terminator: int) -> bytes:
    """``ByteSource.withTerminator``: each component after ``40`` (``3F`` and nothing for a null
    source), then the terminator."""
    out = bytearray()
    for part in parts:
        if part is None:
            out += _NULL
        else:
            out += _NEXT
            out += part
    out.append(terminator)
    return bytes(out)


@lru_cache(maxsize=4096)
def comparable_for(cql_type: CqlType) -> Encode:
    """The byte-comparable form of values of ``cql_type`` (None for an empty value).

    Frozen list/set (``CollectionType.asComparableBytesListOrSet``) and map: the elements (keys
    and values alternating) as a sequence ended by ``00``; tuple and UDT (``TupleType``): every
    field, missing trailing ones as nulls, ended by ``38``; vector (``VectorType``): the
    elements ended by ``00``."""
    kind = cql_type.kind
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind in ("list", "set", "vector"):
        element = comparable_for(cql_type.params[0])

        def collection(value: Any) -> bytes | None:
            if value is None:
                return None
            return _sequence([element(v) for v in value], 0x00)

        return collection
    if kind == "map":
        key_encoder, value_encoder = comparable_for(cql_type.params[0]), comparable_for(cql_type.params[1])

        def mapping(value: Any) -> bytes | None:
            if value is None:
                return None
            parts: list[bytes | None] = []
            for k, v in value:
                parts.append(key_encoder(k))
                parts.append(value_encoder(v))
            return _sequence(parts, 0x00)

        return mapping
    if kind in ("tuple", "udt"):
        encoders = [comparable_for(p) for p in cql_type.params]
        is_udt = kind == "udt"

        def composite(value: Any) -> bytes | None:
            if value is None:
                return None
            values = [v for _, v in value] if is_udt else list(value)
            values += [None] * (len(encoders) - len(values))
            return _sequence(
                [None if v is None else enc(v) for enc, v in zip(encoders, values, strict=False)], TERMINATOR
            )

        return composite
    raise NotComparableError(f"no byte-comparable form for CQL type {cql_type}")


# -- whole clustering prefixes -------------------------------------------------------------------


class ClusteringKey:
    """``ClusteringComparator.asByteComparable`` for one table's clustering columns.

    Build once per table layout; ``row`` / ``start`` / ``end`` encode a clustering (kind
    ``CLUSTERING``: terminator ``38``) or a range bound prefix (``INCL_START``/``EXCL_END``:
    ``20``; ``EXCL_START``/``INCL_END``: ``60``). An empty component (None) is ``3F``, or ``41``
    under DESC, where it sorts after every value."""

    __slots__ = ("_columns",)

    def __init__(self, types: Sequence[CqlType], descending: Sequence[bool]) -> None:
        self._columns = [
            (comparable_for(t), d, _NULL_REVERSED if d else _NULL) for t, d in zip(types, descending, strict=True)
        ]

    def _prefix(self, values: Sequence[Any], terminator: int) -> bytes:
        out = bytearray()
        for (encode, descending, empty), value in zip(self._columns, values, strict=False):
            form = None if value is None else encode(value)
            if form is None:
                out += empty
                continue
            out += _NEXT
            out += invert(form) if descending else form
        out.append(terminator)
        return bytes(out)

    def row(self, values: Sequence[Any]) -> bytes:
        return self._prefix(values, TERMINATOR)

    def start(self, values: Sequence[Any], inclusive: bool) -> bytes:
        return self._prefix(values, LT_NEXT_COMPONENT if inclusive else GT_NEXT_COMPONENT)

    def end(self, values: Sequence[Any], inclusive: bool) -> bytes:
        return self._prefix(values, GT_NEXT_COMPONENT if inclusive else LT_NEXT_COMPONENT)


# -- serialized values (tie-breaks) ----------------------------------------------------------------

_INT32 = struct.Struct(">i")


def _ser_text(value: Any) -> bytes:
    return str(value).encode("utf-8")


def _ser_int(width: int) -> Serialize:
    def serialize(value: Any) -> bytes:
        return int(value).to_bytes(width, "big", signed=True)

    return serialize


def _ser_varint(value: Any) -> bytes:
    """IntegerSerializer (``BigInteger.toByteArray``): minimal two's complement."""
    number = int(value)
    return number.to_bytes(((~number if number < 0 else number).bit_length() + 8) // 8, "big", signed=True)


def _ser_decimal(value: Any) -> bytes:
    """DecimalSerializer: ``int32 scale | varint unscaled`` (the scale as written: 1.0 ≠ 1.00)."""
    sign, digit_tuple, exponent = decimal.Decimal(value).as_tuple()
    assert isinstance(exponent, int)
    unscaled = int("".join(map(str, digit_tuple)) or "0")
    return _INT32.pack(-exponent) + _ser_varint(-unscaled if sign else unscaled)


def _ser_duration(value: Any) -> bytes:
    """DurationSerializer: months, days, nanoseconds as signed vints."""
    return encode_vint(value.months) + encode_vint(value.days) + encode_vint(value.nanoseconds)


_SERIALIZERS: dict[str, Serialize] = {
    "ascii": _ser_text,
    "text": _ser_text,
    "blob": bytes,
    "custom": bytes,
    "boolean": lambda v: b"\x01" if v else b"\x00",
    "tinyint": _ser_int(1),
    "smallint": _ser_int(2),
    "int": _ser_int(4),
    "bigint": _ser_int(8),
    "counter": _ser_int(8),
    "varint": _ser_varint,
    "decimal": _ser_decimal,
    "float": struct.Struct(">f").pack,
    "double": struct.Struct(">d").pack,
    "uuid": lambda v: _uuid_value(v).to_bytes(16, "big"),
    "timeuuid": lambda v: _uuid_value(v).to_bytes(16, "big"),
    "timestamp": lambda v: timestamp_millis(v).to_bytes(8, "big", signed=True),
    "date": lambda v: (_date_days(v) + (1 << 31)).to_bytes(4, "big"),
    "time": lambda v: _time_nanos(v).to_bytes(8, "big", signed=True),
    "inet": _inet_bytes,
    "duration": _ser_duration,
    "empty": lambda _v: b"",
}


def _framed(raw: bytes | None) -> bytes:
    return b"\xff\xff\xff\xff" if raw is None else _INT32.pack(len(raw)) + raw


@lru_cache(maxsize=4096)
def serializer_for(cql_type: CqlType) -> Serialize:
    """Serialized bytes of a value (``TypeSerializer``; frozen forms for composites: ``int32``
    counts and lengths, ``-1`` for a null field; vectors of fixed-width elements unframed).
    None (a null or empty value) serializes to empty bytes."""
    kind = cql_type.kind
    serialize_value: Serialize
    if kind in _SERIALIZERS:
        serialize_value = _SERIALIZERS[kind]
    elif kind in ("list", "set"):
        element = serializer_for(cql_type.params[0])

        def serialize_value(value: Any) -> bytes:
            return _INT32.pack(len(value)) + b"".join(_framed(None if v is None else element(v)) for v in value)

    elif kind == "map":
        key_ser, value_ser = serializer_for(cql_type.params[0]), serializer_for(cql_type.params[1])

        def serialize_value(value: Any) -> bytes:
            parts = [_INT32.pack(len(value))]
            for k, v in value:
                parts.append(_framed(None if k is None else key_ser(k)))
                parts.append(_framed(None if v is None else value_ser(v)))
            return b"".join(parts)

    elif kind in ("tuple", "udt"):
        sers = [serializer_for(p) for p in cql_type.params]
        is_udt = kind == "udt"

        def serialize_value(value: Any) -> bytes:
            values = [v for _, v in value] if is_udt else list(value)
            return b"".join(_framed(None if v is None else s(v)) for s, v in zip(sers, values, strict=False))

    elif kind == "vector":
        element_type = cql_type.params[0]
        element = serializer_for(element_type)
        fixed = element_type.fixed_width is not None

        def serialize_value(value: Any) -> bytes:
            if fixed:
                return b"".join(element(v) for v in value)
            return b"".join(encode_uvint(len(raw)) + raw for raw in (element(v) for v in value))

    else:
        raise NotComparableError(f"no serializer for CQL type {cql_type}")

    def serialize(value: Any) -> bytes:
        return b"" if value is None else serialize_value(value)

    return serialize
