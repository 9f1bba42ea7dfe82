"""Reading change events from segments and directories, once or following new writes."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cdc_replicator.commitlog.cdc_dir import SegmentFile, list_segments, segment_file
from cdc_replicator.commitlog.errors import (
    CommitLogError,
    CorruptSegmentError,
    MutationDecodeError,
    SegmentNotReadyError,
    UnknownTableError,
)
from cdc_replicator.commitlog.idx import IdxState
from cdc_replicator.commitlog.mutation import MutationDecoder
from cdc_replicator.commitlog.segment import Segment
from cdc_replicator.events import ChangeEvent, Position


@dataclass(slots=True)
class ReadStats:
    entries: int = 0
    events: int = 0
    bytes: int = 0
    unknown_table_mutations: int = 0
    errors: int = 0
    unknown_tables: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class ReadError:
    """A problem ``follow`` mode reports and moves past (the corrupt section or segment)."""

    error: CommitLogError


@dataclass(frozen=True, slots=True)
class CaughtUp:
    """``follow(report_idle=True)``: nothing new to read for now, and everything before ``upto``
    is read (past finished segments, even those holding nothing for us). A consumer can commit
    up to there: that is how segments without our data can still be released."""

    upto: Position | None


class CommitLogReader:
    """Decodes segments into events, resuming strictly after ``after``.

    ``read_ahead`` also yields entries past the idx offset (acknowledged, not yet synced;
    plain segments only), marked not durable. Without it, a segment yields up to its idx
    offset, and nothing while it has no idx.
    """

    def __init__(self, decoder: MutationDecoder, read_ahead: bool = True) -> None:
        self.decoder = decoder
        self.read_ahead = read_ahead
        self.stats = ReadStats()

    def segment_events(
        self,
        source: SegmentFile,
        after: Position | None = None,
        on_corrupt: Callable[[CorruptSegmentError], None] | None = None,
    ) -> Iterator[ChangeEvent]:
        """Events of one segment (its idx, if any, bounds what counts as durable).

        ``on_corrupt``: see ``Segment.entries`` (a corrupt section is reported and skipped).
        """
        if after is not None and after.segment_id > source.segment_id:
            return
        start = after.position if after is not None and after.segment_id == source.segment_id else 0
        state = source.idx_state()
        if state is None and not self.read_ahead:
            return  # nothing of this segment is durable yet
        limit = state.offset if state is not None else None
        with Segment(source.log) as segment:
            version = segment.descriptor.messaging_version
            decode = self.decoder.decode
            stats = self.stats
            entries = segment.entries(after=start, limit=limit, read_ahead=self.read_ahead, on_corrupt=on_corrupt)
            for entry in entries:
                if state is None and entry.durable:
                    # Without an idx nothing is known to be durable: a section's marker is
                    # written before the section is flushed, the idx only after.
                    entry = entry._replace(durable=False)  # noqa: PLW2901
                stats.entries += 1
                stats.bytes += len(entry.data) + 12
                try:
                    events = decode(entry, version)
                except UnknownTableError as exc:
                    stats.unknown_table_mutations += 1
                    stats.unknown_tables.add(str(exc.table_id))
                    continue
                except MutationDecodeError as exc:
                    raise MutationDecodeError(source.log, entry.start, exc.reason) from exc
                stats.events += len(events)
                yield from events

    def events(self, sources: Iterable[SegmentFile], after: Position | None = None) -> Iterator[ChangeEvent]:
        for source in sorted(sources, key=lambda s: s.segment_id):
            yield from self.segment_events(source, after)

    def _drain(self, corrupt: list[CorruptSegmentError], reported: set[tuple[Path, int]]) -> Iterator[ReadError]:
        """Report each corrupt section once, although every pass over the segment meets it."""
        while corrupt:
            error = corrupt.pop(0)
            if (error.path, error.offset) in reported:
                continue
            reported.add((error.path, error.offset))
            self.stats.errors += 1
            yield ReadError(error)

    def follow(  # noqa: PLR0912 - one polling loop, kept whole to read as one
        self,
        directory: Path,
        after: Position | None = None,
        poll_s: float = 0.25,
        stop: Callable[[], bool] | None = None,
        decode_patience_s: float = 120.0,
        *,
        report_idle: bool = False,
        on_retry: Callable[[MutationDecodeError], None] = lambda _: None,
    ) -> Generator[ChangeEvent | ReadError | CaughtUp, None, None]:
        """Events from ``directory`` as Cassandra writes them, until ``stop()`` says so.

        ``stop`` is asked whenever there is nothing new to read (None: follow forever).

        A segment is left behind once its idx said COMPLETED *before* it was read to the end
        (read after, it could cover entries appended in between), or, for a segment that never
        got an idx, once a newer segment has one (see ``_finished``). A mutation that does not
        decode is most often a schema not yet agreed (a column added on another node): the
        schema is refreshed and the entry retried for ``decode_patience_s`` before the rest of
        its segment is given up, reported. A corrupt section is reported (a ``ReadError``) and
        skipped; a segment whose header or sync-marker chain is broken is reported once and
        skipped from there on. Errors are counted in ``stats.errors``.

        With ``report_idle``, each time there is nothing new a ``CaughtUp`` says how far reading
        got; ``on_retry`` hears of each undecodable entry about to be retried.
        """
        cursor = after
        broken: set[int] = set()
        corrupt: list[CorruptSegmentError] = []
        reported: set[tuple[Path, int]] = set()
        patience = _Patience(decode_patience_s)
        while True:
            progressed = retry = False
            segments = list_segments(directory)
            for number, source in enumerate(segments):
                if source.segment_id in broken or (cursor is not None and source.segment_id < cursor.segment_id):
                    continue
                try:
                    before = source.idx_state()
                    for event in self.segment_events(source, cursor, corrupt.append):
                        yield from self._drain(corrupt, reported)
                        progressed = True
                        cursor = event.position
                        yield event
                    yield from self._drain(corrupt, reported)
                except SegmentNotReadyError:
                    break
                except FileNotFoundError:
                    continue  # released meanwhile
                except CommitLogError as exc:
                    if isinstance(exc, MutationDecodeError) and not patience.exhausted():
                        on_retry(exc)
                        self.decoder.schema.refresh(force=True)
                        retry = True
                        break
                    patience.reset()
                    self.stats.errors += 1
                    broken.add(source.segment_id)
                    yield ReadError(exc)
                    continue
                if _finished(before, segments[number + 1 :]):
                    cursor = Position(source.segment_id + 1, 0)
                    continue
                break  # the live segment: wait for more
            if progressed and not retry:
                patience.reset()
            if not progressed or retry:
                if report_idle and not retry:
                    yield CaughtUp(cursor)
                if not retry and stop is not None and stop():
                    return
                time.sleep(poll_s)


class _Patience:
    """How long an undecodable entry is retried before it is reported and its segment given up."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.since: float | None = None

    def exhausted(self) -> bool:
        now = time.monotonic()
        if self.since is None:
            self.since = now
        return now - self.since >= self.seconds

    def reset(self) -> None:
        self.since = None


def _finished(before: IdxState | None, newer: list[SegmentFile]) -> bool:
    """Whether a segment gets no more entries, judged from its idx as read *before* reading it.

    Without an idx, it is finished only once a newer segment has one: Cassandra preallocates the
    next file, so a newer file proves nothing, while a newer idx is written after this segment's
    last sync (which writes its own idx if it ever held CDC data).
    """
    if before is not None:
        return before.completed
    return any(s.idx.exists() for s in newer)


def sources_from_paths(paths: Iterable[Path]) -> list[SegmentFile]:
    """Segment files named on a command line: files, or directories to scan."""
    out: list[SegmentFile] = []
    for path in paths:
        if path.is_dir():
            out.extend(list_segments(path))
            continue
        source = segment_file(path)
        if source is None:
            # Not named like a segment: read it anyway, the header will tell.
            source = SegmentFile(0, 0, path)
        out.append(source)
    return out


def end_position(directory: Path) -> Position | None:
    """Where the node's commitlog ends now: the position after the last entry written so far.

    Reads ahead of the idx, so a write Cassandra acknowledged is already counted. Cassandra
    preallocates the next segment (header written, no entries), so the newest file is not
    necessarily the one being written: the newest one holding entries is. ``None`` when
    ``directory`` holds no entry at all. Waiting until every destination's committed position
    reaches this value is how a caller knows the replicator has caught up with its writes.
    """
    for source in reversed(list_segments(directory)):
        try:
            with Segment(source.log) as segment:
                last = None
                for entry in segment.entries(read_ahead=True):
                    last = entry
        except (SegmentNotReadyError, FileNotFoundError):
            continue
        if last is not None:
            return Position(last.segment_id, last.position)
    return None
