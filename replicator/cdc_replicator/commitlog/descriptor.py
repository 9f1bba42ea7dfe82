"""Segment file names and the segment header (``db/commitlog/CommitLogDescriptor.java``).

Header layout (big-endian)::

    int32 version | int64 id | uint16 paramLen | paramLen bytes JSON | int32 CRC32

The CRC covers the version, the low then high 32 bits of the id and ``paramLen`` each as a
4-byte int, then the parameter bytes. The JSON names the compressor
(``compressionClass``/``compressionParameters``) or the cipher (``encCipher``...).
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdc_replicator.commitlog.errors import (
    CorruptSegmentError,
    SegmentNotReadyError,
    UnsupportedSegmentError,
)

VERSION_40 = 7  # Cassandra 4.0, 4.1 and 5.0 in storage_compatibility_mode CASSANDRA_4/UPGRADING
VERSION_50 = 8  # Cassandra 5.0 in storage_compatibility_mode NONE
SUPPORTED_VERSIONS = (VERSION_40, VERSION_50)
# MessagingService version each descriptor version serializes mutations with.
MESSAGING_VERSION = {6: 10, VERSION_40: 12, VERSION_50: 13}

_NAME = re.compile(r"^CommitLog-(\d+)-(\d+)(\.log|_cdc\.idx)$")
_FIXED = struct.Struct(">iqH")
_INT = struct.Struct(">i")
_UINT = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class Descriptor:
    """What a segment header says about the segment."""

    version: int
    segment_id: int
    header_size: int
    """Offset of the first sync marker."""
    compression: str | None
    """Short compressor class name (``LZ4Compressor``...) or None."""
    parameters: dict[str, Any]

    @property
    def messaging_version(self) -> int:
        return MESSAGING_VERSION[self.version]


def parse_name(path: Path | str) -> tuple[int, int] | None:
    """``(version, segment_id)`` from a ``CommitLog-<v>-<id>.log`` or ``..._cdc.idx`` name."""
    match = _NAME.match(Path(path).name)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def log_path_for(idx_path: Path) -> Path:
    return idx_path.with_name(idx_path.name.removesuffix("_cdc.idx") + ".log")


def idx_path_for(log_path: Path) -> Path:
    return log_path.with_name(log_path.name.removesuffix(".log") + "_cdc.idx")


def crc_ints(*values: int) -> int:
    """CRC32 over ints written as 4 big-endian bytes (``FBUtilities.updateChecksumInt``)."""
    return zlib.crc32(b"".join(_UINT.pack(v & 0xFFFF_FFFF) for v in values))


def read_descriptor(buf: bytes, path: Path) -> Descriptor:
    """Parse and CRC-check the header at the start of ``buf``.

    Raises ``CorruptSegmentError`` if the header is truncated or its CRC does not match
    (a zero-filled header is a segment Cassandra has created but not written yet) and
    ``UnsupportedSegmentError`` for versions and encodings we do not read.
    """
    if len(buf) < _FIXED.size + 4:
        raise CorruptSegmentError(path, 0, f"truncated header: {len(buf)} bytes, not a commitlog segment")
    version, segment_id, param_len = _FIXED.unpack_from(buf, 0)
    if version == 0 and segment_id == 0:
        raise SegmentNotReadyError(path, 0, "header is all zeros: the segment has not been written yet")
    if not 0 < version < 64:
        raise CorruptSegmentError(path, 0, f"not a commitlog segment (version field reads {version})")
    end = _FIXED.size + param_len
    if len(buf) < end + 4:
        raise CorruptSegmentError(path, 0, f"truncated header: needs {end + 4} bytes, file has {len(buf)}")
    params = bytes(buf[_FIXED.size : end])
    (claimed,) = _UINT.unpack_from(buf, end)
    actual = zlib.crc32(params, crc_ints(version, segment_id, segment_id >> 32, param_len))
    if claimed != actual:
        raise CorruptSegmentError(
            path, end, f"header CRC mismatch (file {claimed:#010x}, computed {actual:#010x}): not a segment"
        )
    if version not in SUPPORTED_VERSIONS:
        raise UnsupportedSegmentError(
            path, 0, f"commitlog descriptor version {version} is not supported (only 7 and 8)"
        )
    named = parse_name(path)
    if named is not None and named != (version, segment_id):
        raise CorruptSegmentError(
            path, 0, f"header says version {version} id {segment_id}, file name says {named[0]}-{named[1]}"
        )
    try:
        parameters: dict[str, Any] = json.loads(params.decode("utf-8")) if params else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptSegmentError(path, _FIXED.size, f"header parameters are not JSON: {exc}") from exc
    if "encCipher" in parameters:
        raise UnsupportedSegmentError(
            path,
            0,
            f"segment is encrypted ({parameters['encCipher']}, key alias {parameters.get('encKeyAlias')!r}): "
            "reading it needs the node's keystore, which this reader does not support",
        )
    compression = parameters.get("compressionClass")
    short = str(compression).rsplit(".", 1)[-1] if compression else None
    return Descriptor(version, segment_id, end + 4, short, parameters)
