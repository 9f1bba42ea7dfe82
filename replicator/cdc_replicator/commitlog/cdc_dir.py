"""The ``cdc_raw`` directory: which segments exist, how far each is durable, releasing them.

Cassandra hard-links each commitlog segment into ``cdc_raw`` when it is created and writes
``<segment>_cdc.idx`` once the segment holds CDC data. It never deletes a segment that
holds CDC data: the consumer must, and until it does Cassandra counts it against
``cdc_total_space`` (and eventually rejects writes). Deleting is therefore only ever done
through ``release``, by a caller that knows every consumer is past the segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cdc_replicator.commitlog.descriptor import idx_path_for, parse_name
from cdc_replicator.commitlog.idx import IdxState, read_idx


@dataclass(frozen=True, slots=True)
class SegmentFile:
    segment_id: int
    version: int
    log: Path

    @property
    def idx(self) -> Path:
        return idx_path_for(self.log)

    def idx_state(self) -> IdxState | None:
        """The idx file's offset and COMPLETED flag; None while there is no idx yet."""
        return read_idx(self.idx)


def segment_file(path: Path) -> SegmentFile | None:
    named = parse_name(path)
    if named is None or path.suffix != ".log":
        return None
    return SegmentFile(named[1], named[0], path)


def list_segments(directory: Path) -> list[SegmentFile]:
    """The segments in ``directory``, oldest first (segment ids increase on a node)."""
    found = [s for s in (segment_file(p) for p in directory.glob("CommitLog-*.log")) if s is not None]
    return sorted(found, key=lambda s: s.segment_id)


def release(segment: SegmentFile) -> None:
    """Delete the segment's hard link and its idx file, freeing Cassandra's CDC space.

    Call this only once every consumer has durably committed past the segment and the idx
    says COMPLETED: Cassandra will never write to the segment again, and nothing else will
    ever bring its data back. The ``.log`` goes first, so a crash in between leaves an idx
    without a log, which readers ignore, rather than a log that looks unread.
    """
    segment.log.unlink(missing_ok=True)
    segment.idx.unlink(missing_ok=True)
