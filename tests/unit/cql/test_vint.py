"""VInt coding and Java's wrapping arithmetic (``utils/vint/VIntCoding.java``)."""

from __future__ import annotations

import random

import pytest
from cdc_replicator.cql.vint import (
    checked_int32,
    encode_uvint,
    encode_vint,
    read_uvint,
    read_uvint32,
    read_vint,
    to_int32,
    to_int64,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "size"),
    [(0, 1), (127, 1), (128, 2), (2**14 - 1, 2), (2**14, 3), (2**56 - 1, 8), (2**56, 9), (2**64 - 1, 9)],
)
def test_unsigned_sizes_follow_the_leading_ones(value: int, size: int) -> None:
    encoded = encode_uvint(value)
    assert len(encoded) == size
    assert read_uvint(encoded, 0) == (value, size)


def test_unsigned_round_trip_at_an_offset() -> None:
    rng = random.Random(7)
    values = [rng.getrandbits(rng.randint(1, 64)) for _ in range(2000)]
    buf = b"\xaa" + b"".join(encode_uvint(v) for v in values)
    pos = 1
    for value in values:
        decoded, pos = read_uvint(buf, pos)
        assert decoded == value
    assert pos == len(buf)


@pytest.mark.parametrize("value", [0, 1, -1, 63, -64, 64, 2**62, -(2**63), 2**63 - 1])
def test_signed_is_zigzag(value: int) -> None:
    assert read_vint(encode_vint(value), 0)[0] == value


def test_negative_int_is_a_nine_byte_vint_read_back_as_int() -> None:
    # writeUnsignedVInt32(int) sign-extends: -5 becomes 0xFFFFFFFFFFFFFFFB on 9 bytes.
    encoded = encode_uvint(-5)
    assert encoded[0] == 0xFF
    assert len(encoded) == 9
    assert read_uvint32(encoded, 0) == (-5, 9)


def test_uvint32_refuses_values_outside_int() -> None:
    with pytest.raises(ValueError, match="Java int"):
        read_uvint32(encode_uvint(2**40), 0)


@pytest.mark.parametrize("value", [0, 1, 127, 2**31 - 1, -1, -5, -(2**31)])
def test_checked_int32_agrees_with_reading_it(value: int) -> None:
    encoded = encode_uvint(value)
    raw, _ = read_uvint(encoded, 0)
    assert checked_int32(raw) == read_uvint32(encoded, 0)[0] == value


@pytest.mark.parametrize("raw", [2**31, 2**40, 2**63, 2**64 - 2**31 - 1])
def test_checked_int32_refuses_what_no_int_sign_extends_to(raw: int) -> None:
    with pytest.raises(ValueError, match="Java int"):
        checked_int32(raw)


def test_java_wrapping() -> None:
    assert to_int64(2**63) == -(2**63)
    assert to_int64(-(2**63) - 1) == 2**63 - 1
    assert to_int32(2**31) == -(2**31)
    assert to_int32(-1) == -1
    # DeletionTime.LIVE's timestamp written as a delta from a recent minimum, read back.
    minimum = 1_795_698_377_672_953
    delta = (-(2**63) - minimum) % 2**64
    assert to_int64(delta + minimum) == -(2**63)
