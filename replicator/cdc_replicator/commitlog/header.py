"""``SerializationHeader``: a partition update's EncodingStats, and the times read against them.

Timestamps, local deletion times and TTLs are written as unsigned vint deltas from the
``EncodingStats`` minima of the update (``db/SerializationHeader.java``: ``readTimestamp``,
``readLocalDeletionTime``, ``readTTL``, ``readDeletionTime``), with Java's wrapping ``long`` and
``int`` arithmetic, undone here the same way (``cql.vint``). A ``DeletionTime``
(``db/DeletionTime.java``) is a timestamp and a local deletion time; ``LIVE`` reads as None.
"""

from __future__ import annotations

from cdc_replicator.cql.vint import checked_int32, read_uvint, read_uvint32, to_int32, to_int64
from cdc_replicator.events import Deletion
from cdc_replicator.schema.model import ColumnDef

# EncodingStats epochs: 2015-09-22 00:00 GMT, in µs and in s.
TIMESTAMP_EPOCH = 1_442_880_000_000_000
DELETION_TIME_EPOCH = 1_442_880_000

LONG_MIN = -(1 << 63)
LONG_MAX = (1 << 63) - 1
NO_DELETION_TIME = LONG_MAX
INVALID_DELETION_TIME = 0xFFFF_FFFF - 1  # Cell.INVALID_DELETION_TIME
MESSAGING_50 = 13

_U32 = 1 << 32


class Header:
    """The EncodingStats minima and column lists of one partition update (``SerializationHeader``)."""

    __slots__ = ("min_ldt", "min_ts", "min_ttl", "regulars", "statics", "version")

    def __init__(self, min_ts: int, min_ldt: int, min_ttl: int, version: int) -> None:
        self.min_ts = min_ts
        self.min_ldt = min_ldt
        self.min_ttl = min_ttl
        self.version = version
        self.statics: tuple[ColumnDef, ...] = ()
        self.regulars: tuple[ColumnDef, ...] = ()

    @classmethod
    def read(cls, buf: bytes, pos: int, version: int) -> tuple[Header, int]:
        """``EncodingStats.Serializer.deserialize``: the three minima, each a delta from its epoch."""
        min_ts, pos = read_uvint(buf, pos)
        min_ldt, pos = read_uvint(buf, pos)
        min_ttl, pos = read_uvint(buf, pos)
        header = cls(
            to_int64(min_ts + TIMESTAMP_EPOCH),
            # (int) + (int): Java int arithmetic, then widened to long.
            to_int32(checked_int32(min_ldt) + DELETION_TIME_EPOCH),
            checked_int32(min_ttl),
            version,
        )
        return header, pos

    def timestamp(self, buf: bytes, pos: int) -> tuple[int, int]:
        delta, pos = read_uvint(buf, pos)
        value = delta + self.min_ts
        if not LONG_MIN <= value <= LONG_MAX:
            value = to_int64(value)
        return value, pos

    def ldt(self, buf: bytes, pos: int) -> tuple[int, int]:
        delta, pos = read_uvint32(buf, pos)
        return delta + self.min_ldt, pos

    def ttl(self, buf: bytes, pos: int) -> tuple[int, int]:
        delta, pos = read_uvint32(buf, pos)
        return to_int32(delta + self.min_ttl), pos

    def deletion(self, buf: bytes, pos: int) -> tuple[Deletion | None, int]:
        """A DeletionTime; None for ``DeletionTime.LIVE`` (written when another column needs one)."""
        ts, pos = self.timestamp(buf, pos)
        ldt, pos = self.ldt(buf, pos)
        if ts == LONG_MIN:
            return None, pos
        return Deletion(ts, self.decode_ldt(ldt, 0)), pos

    def decode_ldt(self, ldt: int, ttl: int) -> int:
        """``Cell.decodeLocalDeletionTime``: negative = overflowed int (unsigned since messaging 13)."""
        if ldt >= ttl:
            return ldt
        if ldt < 0:
            if self.version < MESSAGING_50:
                return INVALID_DELETION_TIME
            unsigned = ldt % _U32
            return NO_DELETION_TIME if unsigned == 0xFFFF_FFFF else unsigned
        return ldt if ttl == 0x7FFF_FFFF else INVALID_DELETION_TIME
