"""Offsets across destinations: where the shared reader starts and which segments may go.

Each destination commits its own position with its data. The reader starts at the lowest
of them (replaying to the others is harmless: their merges are idempotent), and a segment
is deleted only once every destination has committed past it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from cdc_replicator.commitlog.cdc_dir import SegmentFile
from cdc_replicator.events import Position


def reader_start(committed: Mapping[str, Position | None]) -> Position | None:
    """The lowest committed position; None (from the oldest segment) if any destination has none."""
    positions = list(committed.values())
    if not positions or any(p is None for p in positions):
        return None
    return min(p for p in positions if p is not None)


def releasable(
    segments: Sequence[SegmentFile], committed: Iterable[Position | None], keep: Iterable[int] = ()
) -> list[SegmentFile]:
    """Segments every destination is past (a position in a later segment) and Cassandra finished.

    An unknown position (a destination never reached since start) releases nothing.
    """
    positions = list(committed)
    if not positions or any(p is None for p in positions):
        return []
    low = min(p for p in positions if p is not None)
    kept = set(keep)
    out = []
    for segment in segments:
        if segment.segment_id >= low.segment_id or segment.segment_id in kept:
            continue
        state = segment.idx_state()
        if state is not None and state.completed:
            out.append(segment)
    return out
