"""The masking actions as plain functions over decoded values: the hot path.

Each ``*_fn`` builder runs once per compiled column and returns a closure that masks one
value; closures bind everything they need (key bytes, encoder, marker) so masking a value is
one call with no lookups. Null stays null under every action: a null says nothing about
the value it is not.

Canonical bytes (what ``hash`` and ``hmac`` digest), chosen so that an independent
implementation (a test, an analyst re-deriving a token) can reproduce them from the value
alone, and so that the same value joins across tables even when the column types differ
(``int 42`` and ``text '42'`` give the same token):

- text, ascii: the UTF-8 bytes; blob (and custom types): the bytes themselves;
- integers (tinyint … varint, counter): decimal digits; boolean: ``true`` / ``false``;
- float, double: Python's shortest round-trip ``repr`` (``1.5``, ``nan``, ``inf``);
- timestamp: milliseconds since the epoch, in decimal (Cassandra's own value);
- decimal, uuid, timeuuid, date, time, inet, duration: the driver value's ``str()``;
- frozen collections, tuples, UDTs, vectors: compact JSON (``separators=(",", ":")``,
  non-ASCII kept) of the value where lists/sets/tuples/vectors are arrays, maps are arrays
  of ``[key, value]`` pairs, UDTs are objects in field order, blobs are ``"0x<hex>"``,
  timestamps are integers (ms) and other scalars their canonical text above.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cdc_replicator.cql.types import CqlType
from cdc_replicator.cql.values import CounterShard, CounterValue, CqlMap, UdtValue

Mask = Callable[[Any], Any]
"""Masks one decoded value (None in, None out)."""
Encode = Callable[[Any], bytes]
"""A value's canonical bytes."""

TEXT = CqlType("text")
TEXT_KINDS = frozenset({"text", "ascii"})
_INTEGERS = frozenset({"tinyint", "smallint", "int", "bigint", "varint", "counter"})
_EPOCH = datetime(1970, 1, 1)  # the driver decodes timestamps to naive UTC datetimes
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_SHA256_BLOCK = 64


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """One version of a named key or salt. The bytes never appear in ``repr`` or ``str``."""

    version: int
    secret: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"KeyMaterial(version={self.version}, secret=<{len(self.secret)} bytes>)"

    __str__ = __repr__


def _timestamp_millis(value: Any) -> int:
    if isinstance(value, datetime):
        epoch = _EPOCH if value.tzinfo is None else _EPOCH_UTC
        return (value - epoch) // _MILLISECOND
    return int(value)  # outside datetime's range the decoder keeps Cassandra's milliseconds


def _canonical_json(value: Any) -> Any:  # noqa: PLR0911 - one return per kind of value
    """The JSON-able canonical form of a composite value's parts (see the module docstring)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    if isinstance(value, datetime):
        return _timestamp_millis(value)
    if isinstance(value, UdtValue):
        return {name: _canonical_json(item) for name, item in value}
    if isinstance(value, CqlMap):
        return [[_canonical_json(k), _canonical_json(v)] for k, v in value]
    if isinstance(value, tuple | list | frozenset | set):
        return [_canonical_json(item) for item in value]
    return str(value)


def _encode_text(value: Any) -> bytes:
    return str.encode(value)


def _encode_str(value: Any) -> bytes:
    return str(value).encode()


def _encode_bool(value: Any) -> bytes:
    return b"true" if value else b"false"


def _encode_float(value: Any) -> bytes:
    return repr(value).encode()


def _encode_timestamp(value: Any) -> bytes:
    return str(_timestamp_millis(value)).encode()


def _encode_composite(value: Any) -> bytes:
    return json.dumps(_canonical_json(value), separators=(",", ":"), ensure_ascii=False).encode()


_ENCODERS: dict[str, Encode] = {
    "text": _encode_text,
    "ascii": _encode_text,
    "blob": bytes,
    "custom": bytes,
    "boolean": _encode_bool,
    "float": _encode_float,
    "double": _encode_float,
    "timestamp": _encode_timestamp,
    **dict.fromkeys(_INTEGERS, _encode_str),
    **dict.fromkeys(("list", "set", "map", "tuple", "udt", "vector"), _encode_composite),
}


def encoder_for(cql_type: CqlType) -> Encode:
    """The canonical-bytes function for values of ``cql_type`` (``str()`` for the remaining scalars)."""
    return _ENCODERS.get(cql_type.kind, _encode_str)


def hash_fn(salt: KeyMaterial, encode: Encode) -> Mask:
    """``sha256(salt || canonical bytes)``, hex. The salted state is computed once and copied."""
    salted = hashlib.sha256(salt.secret)

    def mask(value: Any) -> Any:
        if value is None:
            return None
        h = salted.copy()
        h.update(encode(value))
        return h.hexdigest()

    return mask


def hmac_fn(key: KeyMaterial, encode: Encode) -> Mask:
    """``v<version>:`` + HMAC-SHA256 hex: the version says which key made the token.

    HMAC (RFC 2104) is ``H((K ^ opad) || H((K ^ ipad) || m))``. The two padded-key states are
    hashed once here and copied per value, which costs about a third of ``hmac.digest``
    (that one re-derives them, through OpenSSL's HMAC setup, on every call).
    """
    prefix = f"v{key.version}:"
    secret = key.secret if len(key.secret) <= _SHA256_BLOCK else hashlib.sha256(key.secret).digest()
    secret = secret.ljust(_SHA256_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in secret))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in secret))

    def mask(value: Any) -> Any:
        if value is None:
            return None
        i = inner.copy()
        i.update(encode(value))
        o = outer.copy()
        o.update(i.digest())
        return prefix + o.hexdigest()

    return mask


def redact_fn(marker: str) -> Mask:
    def mask(value: Any) -> Any:
        return None if value is None else marker

    return mask


def partial_fn(keep_last: int, mask_char: str) -> Mask:
    """Keep the last ``keep_last`` characters, same length; shorter values are masked entirely
    (showing all of a short value would show it all)."""

    def mask(value: Any) -> Any:
        if value is None:
            return None
        hidden = len(value) - keep_last
        if hidden <= 0:
            return mask_char * len(value)
        return mask_char * hidden + value[hidden:]

    return mask


def null_fn() -> Mask:
    def mask(value: Any) -> Any:
        return None

    return mask


def presence_fn() -> Mask:
    """``null`` over a whole simple column: the value goes, the cell's liveness stays (True)."""

    def mask(value: Any) -> Any:
        return None if value is None else True

    return mask


def counter_presence_fn() -> Mask:
    """``null`` over a whole counter: each replica's shard stays (so the counter, and the row it may
    alone keep alive, still exists), with its clock and running total zeroed (so nothing of the
    count, nor how often it changed, is left)."""

    def mask(value: Any) -> Any:
        if value is None:
            return None
        return CounterValue(CounterShard(shard.counter_id, 0, 0) for shard in value)

    return mask
