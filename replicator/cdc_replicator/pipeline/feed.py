"""The reader loop: segments of one ``cdc_raw`` into chunks of masked events, with exact progress.

Like ``CommitLogReader.follow``, but it knows its cursor at all times, so an idle moment can
report a *watermark*: "everything before this position is read", which lets destinations
commit past finished segments even when those held nothing for them (otherwise those
segments could never be released). A segment counts as finished only if its idx said
COMPLETED *before* it was read to the end, so entries appended between the last read and the
completion are never skipped; a segment without an idx only once a *newer* segment has one
(Cassandra preallocates the next segment file before it switches to it).

Chunks end on entry boundaries (all events of one commitlog entry share its position, and
a destination commits positions), after ``batch_size`` events or ``max_wait`` seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cdc_replicator.commitlog.cdc_dir import list_segments
from cdc_replicator.commitlog.errors import CommitLogError, MutationDecodeError, SegmentNotReadyError
from cdc_replicator.commitlog.reader import CommitLogReader
from cdc_replicator.events import ChangeEvent, Position
from cdc_replicator.sinks.base import DeadLetter

log = logging.getLogger(__name__)
Prepare = Callable[[list[ChangeEvent]], tuple[list[ChangeEvent], list[DeadLetter]]]
"""Masking: events to send on, and events no destination may apply (each destination dead-letters them)."""


@dataclass(frozen=True, slots=True)
class Chunk:
    events: tuple[ChangeEvent, ...]
    upto: Position
    """Everything up to here is read: the last event's position, or a watermark."""
    read_at: float
    """``time.time()`` when the chunk was cut."""
    rejected: tuple[DeadLetter, ...] = ()


class Feed:
    def __init__(
        self,
        reader: CommitLogReader,
        directory: Path,
        prepare: Prepare,
        *,
        batch_size: int,
        max_wait: float,
        poll: float,
        on_error: Callable[[CommitLogError], None] | None = None,
        on_undecodable: Callable[[CommitLogError], None] | None = None,
        decode_patience: float = 120.0,
    ) -> None:
        self.reader = reader
        self.directory = directory
        self.prepare = prepare
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.poll = poll
        self.on_error = on_error
        self.on_undecodable = on_undecodable
        self.decode_patience = decode_patience
        self.broken: set[int] = set()
        self.cursor: Position | None = None

    def run(  # noqa: PLR0912, PLR0915 - one loop mirroring the reader's follow, kept whole to read as one
        self,
        after: Position | None,
        emit: Callable[[Chunk], None],
        should_stop: Callable[[], bool],
        once: bool = False,
    ) -> Position | None:
        """Read from ``after`` until ``should_stop()`` (or, with ``once``, the first idle moment).

        Returns the final cursor. ``emit`` may block (that is the backpressure).
        """
        self.cursor = after
        emitted = after
        buffer: list[ChangeEvent] = []
        started = 0.0

        def flush(upto: Position | None) -> None:
            nonlocal buffer, emitted
            if upto is None or (not buffer and emitted is not None and upto <= emitted):
                return
            events, rejected = self.prepare(buffer) if buffer else ([], [])
            emit(Chunk(tuple(events), upto, time.time(), tuple(rejected)))
            emitted = upto
            buffer = []

        undecodable_since: float | None = None
        while True:
            progressed = False
            retry = False
            segments = list_segments(self.directory)
            for number, source in enumerate(segments):
                cursor = self.cursor
                if source.segment_id in self.broken or (cursor is not None and source.segment_id < cursor.segment_id):
                    continue
                try:
                    before = source.idx_state()
                    for event in self.reader.segment_events(source, cursor):
                        if buffer and event.position != buffer[-1].position:
                            # An entry boundary: the chunk so far is whole.
                            if len(buffer) >= self.batch_size or time.monotonic() - started >= self.max_wait:
                                flush(buffer[-1].position)
                            if should_stop():
                                flush(self.cursor)
                                return self.cursor
                        if not buffer:
                            started = time.monotonic()
                        buffer.append(event)
                        self.cursor = event.position
                        progressed = True
                except SegmentNotReadyError:
                    break
                except FileNotFoundError:
                    continue  # released meanwhile
                except MutationDecodeError as exc:
                    # Most often the schema: a mutation written after ALTER TABLE reaches us before
                    # the node we read system_schema from has the new column. Never skip data
                    # for that: refresh and retry from the cursor, and only give up on the segment
                    # once the schema has had ``decode_patience`` seconds to agree.
                    if undecodable_since is None:
                        undecodable_since = time.monotonic()
                    if time.monotonic() - undecodable_since < self.decode_patience:
                        log.warning("cdc_raw: %s; refreshing the schema and retrying", exc)
                        if self.on_undecodable is not None:
                            self.on_undecodable(exc)
                        retry = True
                        break
                    log.error("cdc_raw: %s; skipping the rest of segment %s", exc, source.segment_id)
                    undecodable_since = None
                    self.broken.add(source.segment_id)
                    if self.on_error is not None:
                        self.on_error(exc)
                    continue
                except CommitLogError as exc:
                    log.error("cdc_raw: %s; skipping the rest of segment %s", exc, source.segment_id)
                    self.broken.add(source.segment_id)
                    if self.on_error is not None:
                        self.on_error(exc)
                    continue
                # Without an idx, a segment is finished only once a newer one has an idx: Cassandra
                # preallocates the next segment, so a newer *file* proves nothing, while a newer
                # segment's idx is written after this one's last sync (which writes its own idx
                # if it ever held CDC data).
                newer_synced = before is None and any(s.idx.exists() for s in segments[number + 1 :])
                if (before is not None and before.completed) or newer_synced:
                    done = Position(source.segment_id + 1, 0)
                    if self.cursor is None or done > self.cursor:
                        self.cursor = done
                    continue
                break  # the live segment
            if progressed and not retry:
                undecodable_since = None
            if retry:
                time.sleep(self.poll)
                continue
            if not progressed:
                flush(self.cursor)  # partial chunk and/or watermark
                if once or should_stop():
                    return self.cursor
                time.sleep(self.poll)
            elif buffer and time.monotonic() - started >= self.max_wait:
                flush(self.cursor)
