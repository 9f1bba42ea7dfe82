"""Errors raised while reading commitlog segments.

Every error names the file, the byte offset and the reason, so the CLI can print it on one
line and an operator can find the spot with ``xxd -s OFFSET``.
"""

from __future__ import annotations

from pathlib import Path


class CommitLogError(Exception):
    """A segment (or its idx file) cannot be read as Cassandra wrote it."""

    def __init__(self, path: Path | str, offset: int, reason: str) -> None:
        self.path = Path(path)
        self.offset = offset
        self.reason = reason
        super().__init__(f"{self.path}: offset {offset}: {reason}")


class CorruptSegmentError(CommitLogError):
    """A CRC or a length does not match inside data Cassandra declared durable."""


class UnsupportedSegmentError(CommitLogError):
    """A valid segment we deliberately do not read (unknown version, encryption, codec)."""


class MutationDecodeError(CommitLogError):
    """An entry passed its CRCs but its mutation does not parse against the schema."""


class UnknownTableError(Exception):
    """A partition update names a table id that the schema does not know, even after a refresh."""

    def __init__(self, table_id: object) -> None:
        self.table_id = table_id
        super().__init__(f"unknown table id {table_id}")


class SegmentNotReadyError(CommitLogError):
    """The file exists but Cassandra has not written its header yet (all zeros): retry later."""
