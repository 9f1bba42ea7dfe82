"""Segment header checks that need no Cassandra: CRC layout, refusals, file names."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from cdc_replicator.commitlog.descriptor import crc_ints, parse_name, read_descriptor
from cdc_replicator.commitlog.errors import CorruptSegmentError, SegmentNotReadyError, UnsupportedSegmentError

pytestmark = pytest.mark.unit
PATH = Path("CommitLog-7-1795698254054.log")


def header(version: int, segment_id: int, params: dict[str, Any]) -> bytes:
    """A header laid out as CommitLogDescriptor.writeHeader does."""
    raw = json.dumps(params).encode() if params else b""
    crc = zlib.crc32(raw, crc_ints(version, segment_id & 0xFFFF_FFFF, segment_id >> 32, len(raw)))
    return struct.pack(">iqH", version, segment_id, len(raw)) + raw + struct.pack(">I", crc)


def test_crc_ints_is_crc32_of_big_endian_ints() -> None:
    assert crc_ints(7, 1) == zlib.crc32(b"\x00\x00\x00\x07\x00\x00\x00\x01")
    assert crc_ints(-1) == zlib.crc32(b"\xff\xff\xff\xff")


def test_plain_and_compressed_headers() -> None:
    plain = read_descriptor(header(7, 1795698254054, {}), PATH)
    assert (plain.version, plain.segment_id, plain.compression, plain.messaging_version) == (7, 1795698254054, None, 12)
    assert plain.header_size == 18
    lz4 = read_descriptor(
        header(8, 1795698254054, {"compressionClass": "org.apache.cassandra.io.compress.LZ4Compressor"}),
        Path("CommitLog-8-1795698254054.log"),
    )
    assert lz4.compression == "LZ4Compressor"
    assert lz4.messaging_version == 13


def test_encrypted_segments_are_refused_with_the_reason() -> None:
    params = {"encCipher": "AES/CBC/PKCS5Padding", "encKeyAlias": "testing:1", "encIV": "AAAA"}
    with pytest.raises(UnsupportedSegmentError, match="encrypted") as caught:
        read_descriptor(header(7, 1795698254054, params), PATH)
    assert caught.value.path == PATH
    assert "keystore" in caught.value.reason


def test_bad_crc_unknown_version_zeros_and_name_mismatch() -> None:
    good = bytearray(header(7, 1795698254054, {}))
    good[-1] ^= 1
    with pytest.raises(CorruptSegmentError, match="header CRC"):
        read_descriptor(bytes(good), PATH)
    with pytest.raises(UnsupportedSegmentError, match="version 9"):
        read_descriptor(header(9, 1795698254054, {}), Path("CommitLog-9-1795698254054.log"))
    with pytest.raises(SegmentNotReadyError):
        read_descriptor(bytes(64), PATH)
    with pytest.raises(CorruptSegmentError, match="file name"):
        read_descriptor(header(7, 5, {}), PATH)


def test_names() -> None:
    assert parse_name("CommitLog-7-1795698254054.log") == (7, 1795698254054)
    assert parse_name("/x/CommitLog-8-12_cdc.idx") == (8, 12)
    assert parse_name("CommitLog-7-12.log.tmp") is None
