"""Random CQL values (hypothesis strategies, edge values weighted in) and their CQL literals.

Every type that can be a clustering column, nested frozen composites included. Values are
plain Python (ints, floats, Decimals, strings, bytes, UUIDs, tuples...) and reach Cassandra
as CQL literals, so nothing of the driver's encoding is involved on the way in; on the way out
the project's own decoder reads them from the commitlog.
"""

from __future__ import annotations

import decimal
import math
import struct
import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

UDT_NAME = "pt"
UDT_FIELDS = (("a", "int"), ("b", "text"))
UDT_DDL = f"CREATE TYPE IF NOT EXISTS {{ks}}.{UDT_NAME} (a int, b text)"

# Clusterable types: CQL type -> name usable in table names.
CLUSTERABLE: dict[str, str] = {
    "ascii": "ascii",
    "text": "text",
    "blob": "blob",
    "boolean": "boolean",
    "tinyint": "tinyint",
    "smallint": "smallint",
    "int": "int",
    "bigint": "bigint",
    "varint": "varint",
    "decimal": "decimal",
    "float": "float",
    "double": "double",
    "date": "date",
    "time": "time",
    "timestamp": "timestamp",
    "uuid": "uuid",
    "timeuuid": "timeuuid",
    "inet": "inet",
    "frozen<list<int>>": "flist",
    "frozen<set<text>>": "fset",
    "frozen<map<int, blob>>": "fmap",
    "tuple<int, text>": "tup",
    f"frozen<{UDT_NAME}>": "udt",
    "vector<float, 2>": "vec",
    "frozen<list<frozen<tuple<bigint, uuid>>>>": "nested",
}

_UUID_MIN = uuid.UUID(int=0)
_UUID_MAX = uuid.UUID(int=(1 << 128) - 1)
_GREGORIAN_OFFSET = 0x01B21DD213814000  # 100 ns intervals from 1582-10-15 to the epoch


@dataclass(frozen=True)
class Raw:
    """A value given as a literal CQL expression (``minTimeuuid('…')``, ``blobAsInt(0x)``)."""

    cql: str


def timeuuid(time_100ns: int, lsb: int) -> uuid.UUID:
    """A version 1 UUID with the given 60-bit timestamp (100 ns since 1582-10-15) and low 64 bits
    as they are (Cassandra checks only the version)."""
    time_low = time_100ns & 0xFFFFFFFF
    time_mid = (time_100ns >> 32) & 0xFFFF
    time_hi = (time_100ns >> 48) & 0x0FFF
    msb = (time_low << 32) | (time_mid << 16) | 0x1000 | time_hi
    return uuid.UUID(int=(msb << 64) | (lsb & 0xFFFFFFFFFFFFFFFF))


def min_timeuuid(millis: int) -> uuid.UUID:
    """Cassandra's ``minTimeuuid``: clock sequence and node ``80 80 …``."""
    return timeuuid(millis * 10_000 + _GREGORIAN_OFFSET, 0x8080808080808080)


def max_timeuuid(millis: int) -> uuid.UUID:
    """Cassandra's ``maxTimeuuid``: the millisecond's last tick, clock sequence and node ``7f 7f …``."""
    return timeuuid(millis * 10_000 + 9_999 + _GREGORIAN_OFFSET, 0x7F7F7F7F7F7F7F7F)


_LETTERS = ["a", "b", "z", "é", "€", "\U0001f600", "'", " ", "A"]
_texts = st.text(alphabet=st.sampled_from([*_LETTERS, "\x00"]), max_size=5)
_texts_no_nul = st.text(alphabet=st.sampled_from(_LETTERS), max_size=5)
"""Postgres text cannot hold NUL (such events are dead-lettered by design): destinations tests
draw text without it."""
_ints = {
    "tinyint": st.integers(-(2**7), 2**7 - 1),
    "smallint": st.integers(-(2**15), 2**15 - 1),
    "int": st.integers(-(2**31), 2**31 - 1),
    "bigint": st.integers(-(2**63), 2**63 - 1),
}
_floats32 = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, math.inf, -math.inf, math.nan, 1.5, -1.5, 3.4e38, -1e-45]),
    st.floats(width=32, allow_nan=False),
)
_floats64 = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, math.inf, -math.inf, math.nan, 1e308, -5e-324, 2.5]),
    st.floats(allow_nan=False),
)
_decimals = st.one_of(
    st.sampled_from(
        ["0", "0.00", "1", "1.0", "1.00", "-1", "-1.0", "0.01", "-0.01", "99", "-99.9", "1E+30", "-8.1E-20"]
    ).map(decimal.Decimal),
    st.builds(
        lambda unscaled, scale: decimal.Decimal(unscaled).scaleb(-scale),
        st.integers(-(10**25), 10**25),
        st.integers(-30, 30),
    ),
)
_varints = st.one_of(
    st.sampled_from([0, 1, -1, 127, 128, -128, -129, 255, 256, -256, -257, 2**64, -(2**64), 2**1030, -(2**1030)]),
    st.integers(-(2**200), 2**200),
)
_days = st.integers(-(2**31), 2**31 - 1)  # days from the epoch (date literals as unsigned ints)
_time_ns = st.integers(0, 86_399_999_999_999)
_millis = st.one_of(st.sampled_from([0, -1, 1, -(10**13), 10**13]), st.integers(-(2**53), 2**53))
_timeuuids = st.one_of(
    st.builds(timeuuid, st.integers(0, 2**60 - 1), st.integers(0, 2**64 - 1)),
    st.builds(min_timeuuid, st.sampled_from([0, 1_700_000_000_000])),
    st.builds(max_timeuuid, st.sampled_from([0, 1_700_000_000_000])),
    st.builds(
        timeuuid,
        st.sampled_from([0x1E1000000000000]),
        st.sampled_from([0, 2**63, 2**62 - 1, 2**64 - 1, 0x8080808080808080]),
    ),
)
_uuids = st.one_of(
    st.sampled_from([_UUID_MIN, _UUID_MAX]),
    st.uuids(),
    st.uuids(version=4),
    _timeuuids,
    st.builds(lambda n: uuid.UUID(int=n), st.integers(0, 2**128 - 1)),
)
_inets = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.sampled_from(["0.0.0.0", "::", "::1", "255.255.255.255"]),
)


def strategy(cql: str, nul: bool = True) -> st.SearchStrategy[Any]:
    """Values of ``cql`` (a key of ``CLUSTERABLE`` or one of its parts). ``nul=False``: only values
    every destination can hold (no NUL in text, dates and timestamps in years 1900-2299, as
    ClickHouse's Date32/DateTime64; others are dead-lettered by design)."""
    if cql.startswith("frozen<") and cql.endswith(">"):
        return strategy(cql[7:-1], nul)
    if cql in ("text", "varchar"):
        return _texts if nul else _texts_no_nul
    if cql == "ascii":
        return st.text(alphabet=st.characters(min_codepoint=0 if nul else 1, max_codepoint=127), max_size=5)
    if cql == "blob":
        return st.binary(max_size=5)
    if cql == "boolean":
        return st.booleans()
    if cql in _ints:
        return _ints[cql]
    if cql == "varint":
        return _varints
    if cql == "decimal":
        return _decimals
    if cql == "float":
        return _floats32
    if cql == "double":
        return _floats64
    if cql == "date":
        return _days if nul else st.integers(-25_567, 120_529)  # ClickHouse Date32: 1900-2299
    if cql == "time":
        return _time_ns
    if cql == "timestamp":
        return _millis if nul else st.integers(-2_208_988_800_000, 10_413_791_999_999)  # DateTime64 too
    if cql == "uuid":
        return _uuids
    if cql == "timeuuid":
        return _timeuuids
    if cql == "inet":
        return _inets
    if cql == "duration":
        sign = st.sampled_from([1, -1])
        return st.builds(
            lambda s, m, d, n: (s * m, s * d, s * n),
            sign,
            st.integers(0, 50),
            st.integers(0, 40),
            st.integers(0, 10**15),
        )
    inner = cql[cql.index("<") + 1 : cql.rindex(">")] if "<" in cql else ""
    if cql.startswith("list<"):
        return st.lists(strategy(inner, nul), max_size=3).map(tuple)
    if cql.startswith("set<"):
        return st.frozensets(strategy(inner, nul), max_size=3)
    if cql.startswith("map<"):
        key, value = _split(inner)
        # At least one entry: Cassandra 5.0.6 takes ``{}`` for a set literal in a frozen map key
        # column and fails with a ClassCastException (a server error, not our concern here).
        return st.dictionaries(strategy(key, nul), strategy(value, nul), min_size=1, max_size=3)
    if cql.startswith("tuple<"):
        return st.tuples(*(strategy(part, nul) | st.none() for part in _split(inner)))
    if cql.startswith("vector<"):
        element, dimension = _split(inner)
        return st.tuples(*(strategy(element, nul) for _ in range(int(dimension))))
    if cql == UDT_NAME:
        return st.tuples(*(strategy(t, nul) | st.none() for _, t in UDT_FIELDS))
    raise ValueError(f"no strategy for {cql}")


def _split(inner: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(inner):
        if char == "<":
            depth += 1
        elif char == ">":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(inner[start:i].strip())
            start = i + 1
    parts.append(inner[start:].strip())
    return parts


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _float_literal(value: float, width: int) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if width == 4:
        value = struct.unpack(">f", struct.pack(">f", value))[0]
    return repr(value)


def literal(cql: str, value: Any) -> str:
    """The CQL literal of ``value`` as a ``cql``."""
    if isinstance(value, Raw):
        return value.cql
    if value is None:
        return "null"
    if cql.startswith("frozen<") and cql.endswith(">"):
        return literal(cql[7:-1], value)
    if cql in ("text", "varchar", "ascii"):
        return _quote(value)
    if cql == "blob":
        return "0x" + bytes(value).hex()
    if cql == "boolean":
        return "true" if value else "false"
    if cql in _ints or cql in ("varint", "timestamp"):
        return str(value)
    if cql == "decimal":
        return str(value)
    if cql in ("float", "double"):
        return _float_literal(value, 4 if cql == "float" else 8)
    if cql == "date":
        return _quote(str(value + 2**31))  # unsigned days, the epoch at 2^31
    if cql == "time":
        return _quote(str(value))  # nanoseconds since midnight
    if cql in ("uuid", "timeuuid"):
        return str(value)
    if cql == "inet":
        return _quote(value)
    if cql == "duration":
        months, days, nanos = value
        sign = "-" if min(value) < 0 else ""
        return f"{sign}{abs(months)}mo{abs(days)}d{abs(nanos)}ns"
    inner = cql[cql.index("<") + 1 : cql.rindex(">")] if "<" in cql else ""
    if cql.startswith("list<"):
        return "[" + ", ".join(literal(inner, v) for v in value) + "]"
    if cql.startswith("set<"):
        return "{" + ", ".join(literal(inner, v) for v in value) + "}"
    if cql.startswith("map<"):
        key, item = _split(inner)
        return "{" + ", ".join(f"{literal(key, k)}: {literal(item, v)}" for k, v in value.items()) + "}"
    if cql.startswith("tuple<"):
        return "(" + ", ".join(literal(t, v) for t, v in zip(_split(inner), value, strict=True)) + ")"
    if cql.startswith("vector<"):
        element, _ = _split(inner)
        return "[" + ", ".join(literal(element, v) for v in value) + "]"
    if cql == UDT_NAME:
        return "{" + ", ".join(f"{name}: {literal(t, v)}" for (name, t), v in zip(UDT_FIELDS, value, strict=True)) + "}"
    raise ValueError(f"no literal for {cql}")
