"""Cassandra's variable-length integers and Java's fixed-width arithmetic.

Source: ``utils/vint/VIntCoding.java``. The number of leading 1-bits of the first byte is
the number of extra bytes (0-8); the remaining bits of the first byte and the extra bytes
form a big-endian unsigned value. Signed vints are zigzag-encoded.

Cassandra writes deltas (``value - min``) with Java ``long``/``int`` arithmetic, which wraps
silently; the decoder must wrap the same way (``to_int64``/``to_int32``) to get the values
back, e.g. ``DeletionTime.LIVE`` (``Long.MIN_VALUE``) written as a delta against a recent
timestamp.
"""

from __future__ import annotations

import mmap
from typing import TypeAlias

# Anything that indexes to ints and slices to something int.from_bytes accepts.
Buffer: TypeAlias = bytes | bytearray | memoryview | mmap.mmap

_FROM_BYTES = int.from_bytes

# Number of leading 1-bits for every possible first byte: the count of extra bytes.
EXTRA_BYTES: tuple[int, ...] = tuple(8 - (~b & 0xFF).bit_length() if b != 0xFF else 8 for b in range(256))
# Mask of the value bits left in the first byte once the length prefix is removed.
FIRST_BYTE_MASK: tuple[int, ...] = tuple(0xFF >> (EXTRA_BYTES[b] + 1) if b != 0xFF else 0 for b in range(256))

_U64 = 1 << 64
_I64_MIN = -(1 << 63)
_U32 = 1 << 32


def read_uvint(buf: Buffer, pos: int) -> tuple[int, int]:
    """Read an unsigned vint at ``pos``; return ``(value, next_pos)``."""
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    n = EXTRA_BYTES[first]
    end = pos + 1 + n
    rest = _FROM_BYTES(buf[pos + 1 : end])
    return ((first & FIRST_BYTE_MASK[first]) << (8 * n)) | rest, end


def read_vint(buf: Buffer, pos: int) -> tuple[int, int]:
    """Read a signed (zigzag) vint; return ``(value, next_pos)``."""
    value, pos = read_uvint(buf, pos)
    return (value >> 1) ^ -(value & 1), pos


def read_uvint32(buf: Buffer, pos: int) -> tuple[int, int]:
    """``readUnsignedVInt32``: an unsigned vint checked-cast to a Java ``int`` (``checked_int32``)."""
    value, pos = read_uvint(buf, pos)
    if value >= 0x8000_0000:  # checked_int32, inlined: this reads every length of a long value
        value -= _U64
        if value < -0x8000_0000:
            raise ValueError(f"vint {value + _U64:#x} does not fit a Java int")
    return value, pos


def checked_int32(value: int) -> int:
    """``Ints.checkedCast`` of an unsigned vint already read, as ``readUnsignedVInt32`` does.

    Java writes a negative ``int`` by sign-extending it to ``long`` (a 9-byte vint), so the
    value is the signed 64-bit reading, which must fit in 32 bits.
    """
    if value >= 0x8000_0000:
        value -= _U64
        if value < -0x8000_0000:
            raise ValueError(f"vint {value + _U64:#x} does not fit a Java int")
    return value


def to_int64(value: int) -> int:
    """Wrap an arbitrary Python int the way Java ``long`` arithmetic does."""
    return ((value - _I64_MIN) % _U64) + _I64_MIN


def to_int32(value: int) -> int:
    """Wrap an arbitrary Python int the way Java ``int`` arithmetic does."""
    return ((value + 0x8000_0000) % _U32) - 0x8000_0000


def encode_uvint(value: int) -> bytes:
    """Encode an unsigned 64-bit value (negative values as their two's complement), for tests and tools."""
    value %= _U64
    for extra in range(8):
        if value < 1 << (7 * (extra + 1)):
            raw = value.to_bytes(extra + 1, "big")
            prefix = (0xFF << (8 - extra)) & 0xFF
            return bytes([raw[0] | prefix]) + raw[1:]
    return b"\xff" + value.to_bytes(8, "big")


def encode_vint(value: int) -> bytes:
    """Encode a signed value with zigzag, for tests and tools."""
    return encode_uvint((value << 1) ^ (value >> 63))
