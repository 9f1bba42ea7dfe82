"""``cql.comparable``: Cassandra's documented byte-comparable examples, exact serialization
round trips from decoded values, and orders that follow each type's comparator.

(The real Cassandra is the oracle in tests/integration/oracle; these are the pure properties.)
"""

from __future__ import annotations

import datetime
import decimal
import math
import struct
import uuid
from typing import Any

import pytest
from cassandra import cqltypes
from cdc_replicator.cql.comparable import ClusteringKey, comparable_for, serializer_for
from cdc_replicator.cql.decode import decoder_for
from cdc_replicator.cql.types import parse_type
from hypothesis import given
from hypothesis import strategies as st

pytestmark = pytest.mark.unit


def form(cql: str, value: Any) -> bytes:
    encoded = comparable_for(parse_type(cql))(value)
    assert encoded is not None
    return encoded


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.1", "c1 01 81 8a 00"),
        ("1", "c1 01 81 00"),
        ("1.00", "c1 01 81 00"),
        ("0.01", "c0 81 00"),
        ("0", "80"),
        ("-1", "3f ff 7f 00"),
        ("-1.1", "3f ff 7e da 00"),
        ("-98.9", "3f ff 1d 8a 00"),
        ("-99.9", "3f ff 1c 8a 00"),
        ("-8.1e2000", "3e fc 17 77 da 00"),
        ("-8.1e-2000", "42 03 e7 77 da 00"),
        ("8.1e-2000", "be fc 19 88 8a 00"),
        ("8.1e2000", "c2 03 e9 88 8a 00"),
    ],
)
def test_decimal_forms_are_those_of_byte_comparable_md(value: str, expected: str) -> None:
    """The table in Cassandra's ``ByteComparable.md`` (its ``-0.01`` row has a typo: ``40 81 00``
    would sort -0.01 above -0.02; the digit rule it states gives ``40 7f 00``)."""
    assert form("decimal", decimal.Decimal(value)).hex(" ") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, "80 00"), (1, "80 01"), (-1, "7f ff"), (255, "80 ff"), (-256, "7f 00"), (2**16, "82 01 00 00")],
)
def test_varint_forms_are_those_of_byte_comparable_md(value: int, expected: str) -> None:
    assert form("varint", value).hex(" ") == expected
    assert form("varint", 2**1024)[:2].hex() == "ff80"
    assert form("varint", -(2**2048))[:3].hex() == "000080"


def test_uuid_blob_and_float_forms_are_those_of_byte_comparable_md() -> None:
    assert form("uuid", uuid.UUID("cc520882-9507-44fb-8fc9-b349ecdee658")).hex() == "4cc52088295074fb8fc9b349ecdee658"
    assert form("uuid", uuid.UUID("2a92d750-d8dc-11e6-a2de-cf8ecd4cf053")).hex() == "11e6d8dc2a92d750a2decf8ecd4cf053"
    assert form("blob", bytes.fromhex("2200")).hex() == "2200fe"
    assert form("blob", bytes.fromhex("22000033")).hex() == "2200feff3300"
    assert form("blob", bytes.fromhex("220011")).hex() == "2200ff1100"
    assert form("float", -0.0).hex() == "7fffffff"
    assert form("double", math.nan).hex() == "fff8000000000000"
    assert form("double", -math.inf).hex() == "000fffffffffffff"


def test_bounds_and_prefixes_compare_around_rows() -> None:
    """``(a) >=`` < every row starting with a < ``(a) <=``; a DESC column inverts its values."""
    key = ClusteringKey([parse_type("int"), parse_type("text")], [False, True])
    rows = sorted((key.row([a, b]), a, b) for a in (-1, 0, 1) for b in ("", "a", "b"))
    assert [(a, b) for _, a, b in rows] == [(a, b) for a in (-1, 0, 1) for b in ("b", "a", "")]
    start, end = key.start([0], inclusive=True), key.end([0], inclusive=True)
    inside = [r for r, *_ in rows if start < r < end]
    assert len(inside) == 3
    assert not [r for r, *_ in rows if key.start([0], inclusive=False) < r < key.end([1], inclusive=False)]
    assert key.start([], inclusive=True) < min(rows)[0]
    assert key.end([], inclusive=True) > max(rows)[0]


def _java_order(value: float) -> tuple[int, float]:
    """Java's ``Double.compare``: -0.0 before 0.0, every NaN equal and above +Infinity."""
    if math.isnan(value):
        return (5, 0.0)
    if value == 0:
        return (1, 0.0) if math.copysign(1, value) < 0 else (2, 0.0)
    return (0, value) if value < 0 else (4, value)


@given(st.lists(st.floats() | st.just(-math.nan), min_size=2, max_size=30))
def test_double_order_is_double_compare(values: list[float]) -> None:
    for a in values:
        for b in values:
            assert (form("double", a) < form("double", b)) == (_java_order(a) < _java_order(b))


@given(st.lists(st.integers(-(2**200), 2**200), min_size=2, max_size=30))
def test_varint_order_is_numeric(values: list[int]) -> None:
    assert sorted(values, key=lambda v: form("varint", v)) == sorted(values)


@given(st.lists(st.decimals(allow_nan=False, allow_infinity=False), min_size=2, max_size=30))
def test_decimal_order_is_numeric_and_scale_blind(values: list[decimal.Decimal]) -> None:
    forms = [form("decimal", v) for v in values]
    for a, fa in zip(values, forms, strict=True):
        for b, fb in zip(values, forms, strict=True):
            assert (fa < fb) == (a < b)
            assert (fa == fb) == (a == b)


# -- serialized bytes: decode then serialize gives the bytes back -------------------------------

_ROUND_TRIPS: dict[str, st.SearchStrategy[bytes]] = {
    "int": st.integers(-(2**31), 2**31 - 1).map(lambda v: v.to_bytes(4, "big", signed=True)),
    "bigint": st.integers(-(2**63), 2**63 - 1).map(lambda v: v.to_bytes(8, "big", signed=True)),
    "smallint": st.integers(-(2**15), 2**15 - 1).map(lambda v: v.to_bytes(2, "big", signed=True)),
    "tinyint": st.integers(-128, 127).map(lambda v: v.to_bytes(1, "big", signed=True)),
    "varint": st.integers(-(2**2000), 2**2000).map(lambda v: cqltypes.IntegerType.serialize(v, 4)),
    "decimal": st.decimals(allow_nan=False, allow_infinity=False).map(lambda v: cqltypes.DecimalType.serialize(v, 4)),
    "double": st.floats().map(lambda v: struct.pack(">d", v)) | st.just(struct.pack(">d", -0.0)),
    "float": st.floats(width=32).map(lambda v: struct.pack(">f", v)),
    # Timestamps before 1970 and past datetime's years (kept as milliseconds by the decoder).
    "timestamp": st.integers(-(2**62), 2**62).map(lambda v: v.to_bytes(8, "big", signed=True)),
    "date": st.integers(0, 2**32 - 1).map(lambda v: v.to_bytes(4, "big")),
    "time": st.integers(0, 86_399_999_999_999).map(lambda v: v.to_bytes(8, "big", signed=True)),
    "uuid": st.uuids().map(lambda u: u.bytes),
    "timeuuid": st.uuids(version=1).map(lambda u: u.bytes),
    "inet": st.ip_addresses().map(lambda a: a.packed),
    "text": st.text().map(lambda t: t.encode("utf-8")),
    "blob": st.binary(),
    "boolean": st.sampled_from([b"\x00", b"\x01"]),
    "duration": st.tuples(st.integers(-(2**31), 0), st.integers(-(2**31), 0), st.integers(-(2**62), 0)).map(
        lambda t: cqltypes.DurationType.serialize(cqltypes.util.Duration(*t), 4)
    ),
    "frozen<list<int>>": st.lists(st.integers(-9, 9)).map(
        lambda v: cqltypes.lookup_casstype("ListType(Int32Type)").serialize(v, 4)
    ),
    "frozen<map<text, double>>": st.dictionaries(st.text(max_size=3), st.floats()).map(
        lambda v: cqltypes.lookup_casstype("MapType(UTF8Type, DoubleType)").serialize(v, 4)
    ),
    "tuple<int, text>": st.tuples(st.integers(-9, 9) | st.none(), st.text(max_size=3) | st.none()).map(
        lambda v: cqltypes.lookup_casstype("TupleType(Int32Type, UTF8Type)").serialize(v, 4)
    ),
}


@pytest.mark.parametrize("cql", list(_ROUND_TRIPS))
@given(data=st.data())
def test_serializing_a_decoded_value_gives_its_bytes_back(cql: str, data: Any) -> None:
    """Decimal scale (1.0 ≠ 1.00), -0.0, NaN, huge varints, timestamps before 1970 and out of
    datetime's range, UTF-8, empty strings: the tie-break compares exactly Cassandra's bytes."""
    raw = data.draw(_ROUND_TRIPS[cql], label="serialized")
    cql_type = parse_type(cql)
    decoded = decoder_for(cql_type)(raw)
    assert serializer_for(cql_type)(decoded) == raw


def test_timestamps_before_1970_and_aware_datetimes_serialize_exactly() -> None:
    serialize = serializer_for(parse_type("timestamp"))
    assert serialize(datetime.datetime(1969, 12, 31, 23, 59, 59, 999000)) == (-1).to_bytes(8, "big", signed=True)
    aware = datetime.datetime(1970, 1, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert serialize(aware) == (0).to_bytes(8, "big")
