"""Reading entries out of one segment: sync sections, framing, CRCs, compression.

A segment is a header followed by a chain of sync sections (``CommitLogSegment``,
``CommitLogSegmentReader``). Each section starts with an 8-byte marker
``int32 next_marker_offset | int32 CRC32(id_low, id_high, marker_offset)`` and holds entries
framed as ``int32 size | int32 CRC32(size) | size bytes | int32 CRC32(size, bytes)``.

Positions are *logical*: file offsets in plain segments, offsets into the writer's
uncompressed buffer in compressed segments (the idx file and Cassandra's
``CommitLogPosition`` use the same). An entry's position is the offset just after its
trailing CRC, like Cassandra's ``entryLocation``: a consumer that has handled the entry at
position P resumes with ``after=P``.

Plain segments are memory-mapped by Cassandra and preallocated with zeros. The marker of the
section being written is still zero, but the entries behind it are already in the shared page
cache, and each carries its own CRCs. ``read_ahead`` reads them entry by entry, stopping at
the first one that is not complete yet, so acknowledged writes are seen before the next
commitlog sync rewrites the idx.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from cdc_replicator.commitlog.descriptor import Descriptor, crc_ints, read_descriptor
from cdc_replicator.commitlog.errors import CorruptSegmentError, UnsupportedSegmentError

SYNC_MARKER_SIZE = 8
ENTRY_OVERHEAD = 12
MIN_ENTRY_SIZE = 10  # CommitLogReader: "Mutation must be at LEAST 10 bytes"
_MARKER = struct.Struct(">iI")
_ENTRY_HEAD = struct.Struct(">iI")
_UINT = struct.Struct(">I")
_INT = struct.Struct(">i")


class Entry(NamedTuple):
    """One framed, CRC-checked mutation."""

    segment_id: int
    start: int
    """Logical offset of the entry's size field."""
    position: int
    """Logical offset after the entry's trailing CRC: where the next entry (or marker) starts."""
    data: bytes
    """The serialized ``Mutation``."""
    durable: bool
    """False if read ahead of the idx offset (acknowledged, not yet synced to disk)."""


def _decompressor(descriptor: Descriptor, path: Path) -> Callable[[bytes, int], bytes]:
    name = descriptor.compression
    if name == "LZ4Compressor":
        import lz4.block  # type: ignore[import-untyped]  # noqa: PLC0415 - only compressed segments need it

        # LZ4Compressor prefixes the raw block with its length as 4 little-endian bytes,
        # exactly what lz4.block's default size header is.
        def lz4_block(data: bytes, _length: int) -> bytes:
            return bytes(lz4.block.decompress(data))

        return lz4_block
    if name == "DeflateCompressor":
        return lambda data, _length: zlib.decompress(data)
    raise UnsupportedSegmentError(
        path, 0, f"segment is compressed with {descriptor.compression}, which this reader does not decode"
    )


class Segment:
    """One commitlog segment file, opened for reading.

    The file is mapped read-only; ``entries`` can be called again later to pick up what
    Cassandra appended in the meantime (the mapping covers the file's size at open time, so
    a compressed segment, which grows, should be reopened).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                raise CorruptSegmentError(self.path, 0, "empty file, not a commitlog segment")
            self._map = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        self.size = size
        self.descriptor = read_descriptor(self._map[: min(size, 64 * 1024)], self.path)
        self.segment_id = self.descriptor.segment_id
        self._decompress = (
            _decompressor(self.descriptor, self.path) if self.descriptor.compression is not None else None
        )

    def close(self) -> None:
        self._map.close()

    def __enter__(self) -> Segment:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def compressed(self) -> bool:
        return self._decompress is not None

    def entries(
        self,
        after: int = 0,
        limit: int | None = None,
        read_ahead: bool = False,
        on_corrupt: Callable[[CorruptSegmentError], None] | None = None,
    ) -> Iterator[Entry]:
        """Yield the entries whose position is greater than ``after``.

        ``limit`` is the durable offset from the idx file: entries ending past it are only
        yielded with ``read_ahead`` (and marked not durable), and anything malformed past it
        is taken for a write in progress rather than corruption. ``limit=None`` treats the
        whole file as durable (a closed segment, or a copy without its idx).
        Read-ahead only applies to plain segments: compressed sections reach the file whole,
        at sync time.

        Corruption raises ``CorruptSegmentError``; with ``on_corrupt``, corruption inside a
        section (an entry, a compressed block) is passed to it instead and reading goes on
        with the next section. A broken sync marker still raises: the chain is lost there.
        """
        if self._decompress is not None:
            yield from self._compressed_entries(after, limit, on_corrupt)
        else:
            yield from self._plain_entries(after, limit, read_ahead, on_corrupt)

    # -- plain (memory-mapped) segments ---------------------------------------------------

    def _plain_entries(
        self,
        after: int,
        limit: int | None,
        read_ahead: bool,
        on_corrupt: Callable[[CorruptSegmentError], None] | None,
    ) -> Iterator[Entry]:
        buf = self._map
        size = self.size
        id_low, id_high = self.segment_id & 0xFFFF_FFFF, self.segment_id >> 32
        pos = self.descriptor.header_size
        while pos <= size - SYNC_MARKER_SIZE:
            end, crc = _MARKER.unpack_from(buf, pos)
            if end == 0 and crc == 0:
                # The marker of the section still being written (or the end of the data).
                if read_ahead:
                    yield from self._section(pos + SYNC_MARKER_SIZE, None, after, limit, True, True)
                return
            tentative = limit is not None and pos >= limit
            if crc != crc_ints(id_low, id_high, pos):
                if tentative:
                    return
                raise CorruptSegmentError(self.path, pos, f"sync marker CRC mismatch (next marker {end})")
            if end < pos + SYNC_MARKER_SIZE or end > size:
                if tentative:
                    return
                raise CorruptSegmentError(
                    self.path,
                    pos,
                    f"sync marker points to {end}, outside the file ({size} bytes): truncated?",
                )
            if end > after:
                try:
                    yield from self._section(pos + SYNC_MARKER_SIZE, end, after, limit, tentative, read_ahead)
                except CorruptSegmentError as exc:
                    if on_corrupt is None:
                        raise
                    on_corrupt(exc)
            if limit is not None and end >= limit and not read_ahead:
                return
            pos = end

    # -- compressed segments -------------------------------------------------------------

    def _compressed_entries(
        self, after: int, limit: int | None, on_corrupt: Callable[[CorruptSegmentError], None] | None
    ) -> Iterator[Entry]:
        assert self._decompress is not None
        buf = self._map
        size = self.size
        id_low, id_high = self.segment_id & 0xFFFF_FFFF, self.segment_id >> 32
        pos = self.descriptor.header_size  # physical
        logical = pos
        while pos <= size - SYNC_MARKER_SIZE - 4:
            if limit is not None and logical >= limit:
                return
            end, crc = _MARKER.unpack_from(buf, pos)
            if end == 0 and crc == 0:
                return
            if crc != crc_ints(id_low, id_high, pos):
                raise CorruptSegmentError(self.path, pos, f"sync marker CRC mismatch (next marker {end})")
            if end < pos + SYNC_MARKER_SIZE + 4 or end > size:
                if limit is None or logical < limit:
                    raise CorruptSegmentError(
                        self.path, pos, f"compressed section ends at {end}, past the end of the file ({size})"
                    )
                return
            (length,) = _INT.unpack_from(buf, pos + SYNC_MARKER_SIZE)
            content = logical + SYNC_MARKER_SIZE
            logical_end = content + length
            if logical_end > after:
                try:
                    yield from self._compressed_section(pos, end, length, content, after, limit)
                except CorruptSegmentError as exc:
                    if on_corrupt is None:
                        raise
                    on_corrupt(exc)
            pos = end
            logical = logical_end

    def _compressed_section(  # noqa: PLR0917 - internal
        self, pos: int, end: int, length: int, content: int, after: int, limit: int | None
    ) -> Iterator[Entry]:
        assert self._decompress is not None
        try:
            plain = self._decompress(self._map[pos + SYNC_MARKER_SIZE + 4 : end], length)
        except Exception as exc:
            raise CorruptSegmentError(
                self.path, pos, f"{self.descriptor.compression} section does not decompress: {exc}"
            ) from exc
        if len(plain) != length:
            raise CorruptSegmentError(
                self.path, pos, f"section decompressed to {len(plain)} bytes, header says {length}"
            )
        yield from _entries_in(
            self.path,
            self.segment_id,
            plain,
            start=0,
            stop=length,
            base=content,
            after=after,
            limit=limit,
            tentative=False,
            read_ahead=False,
        )

    def _section(  # noqa: PLR0917 - internal, called from two places
        self, start: int, end: int | None, after: int, limit: int | None, tentative: bool, read_ahead: bool
    ) -> Iterator[Entry]:
        stop = self.size if end is None else end
        yield from _entries_in(
            self.path,
            self.segment_id,
            self._map,
            start=start,
            stop=stop,
            base=0,
            after=after,
            limit=limit,
            tentative=tentative,
            read_ahead=read_ahead,
        )


def _entries_in(
    path: Path,
    segment_id: int,
    buf: bytes | mmap.mmap,
    *,
    start: int,
    stop: int,
    base: int,
    after: int,
    limit: int | None,
    tentative: bool,
    read_ahead: bool,
) -> Iterator[Entry]:
    """Entries of one section held in ``buf[start:stop]``; ``base`` maps buffer to logical offsets.

    ``tentative`` sections (read ahead, or past the idx offset) end quietly at the first entry
    that is incomplete or fails its CRC: Cassandra may still be writing it. In durable
    sections the same thing is corruption.
    """
    pos = start
    if after > base + pos:
        # Resume inside this section: ``after`` is an entry boundary.
        pos = after - base
    crc32 = zlib.crc32
    unpack_head = _ENTRY_HEAD.unpack_from
    unpack_uint = _UINT.unpack_from
    while stop - pos >= 4:
        size, size_crc = unpack_head(buf, pos) if stop - pos >= 8 else (_INT.unpack_from(buf, pos)[0], -1)
        if size == 0:
            return  # zero padding: end of the section's data
        logical_start = base + pos
        data_end = pos + 8 + size
        ended = data_end + 4
        beyond_limit = limit is not None and base + ended > limit
        if beyond_limit and not read_ahead:
            return
        soft = tentative or beyond_limit
        if size < MIN_ENTRY_SIZE or ended > stop:
            if soft:
                return
            raise CorruptSegmentError(path, logical_start, f"invalid entry size {size} (section ends at {base + stop})")
        head = buf[pos : pos + 4]
        if crc32(head) != size_crc:
            if soft:
                return
            raise CorruptSegmentError(path, logical_start, "entry size CRC mismatch")
        data = buf[pos + 8 : data_end]
        if crc32(data, crc32(head)) != unpack_uint(buf, data_end)[0]:
            if soft:
                return
            raise CorruptSegmentError(path, logical_start, "entry CRC mismatch")
        pos = ended
        yield Entry(segment_id, logical_start, base + ended, bytes(data), not soft)
