"""The ``<segment>_cdc.idx`` file: how far a CDC segment is durable.

Cassandra rewrites it on every commitlog sync by truncate-then-write
(``CommitLogSegment.writeCDCIndexFile``): the offset of the end of the last synced section,
plus ``\\nCOMPLETED`` once the segment is closed and will not change again. A reader can
therefore see an empty or half-written file; it retries (CASSANDRA-17416).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from cdc_replicator.commitlog.errors import CorruptSegmentError


@dataclass(frozen=True, slots=True)
class IdxState:
    offset: int
    """End of the durable part of the segment (a logical offset in compressed segments)."""
    completed: bool
    """The segment is closed: it will not grow."""


def parse_idx(text: str) -> IdxState | None:
    """Parse idx content; None if it is empty or torn (a rewrite in progress)."""
    lines = text.split("\n")
    if not lines[0].strip().isdigit():
        return None
    completed = len(lines) > 1 and lines[1].strip() == "COMPLETED"
    if len(lines) > 1 and lines[1].strip() not in ("", "COMPLETED"):
        return None
    return IdxState(int(lines[0].strip()), completed)


def read_idx(path: Path, attempts: int = 20, delay_s: float = 0.005) -> IdxState | None:
    """Read the idx file, retrying while Cassandra is rewriting it.

    Returns None if the file does not exist (the segment has no CDC data synced yet).
    """
    for _ in range(attempts):
        try:
            text = path.read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            return None
        state = parse_idx(text)
        if state is not None:
            return state
        time.sleep(delay_s)
    raise CorruptSegmentError(path, 0, f"idx file stays unreadable after {attempts} attempts: {text[:40]!r}")
