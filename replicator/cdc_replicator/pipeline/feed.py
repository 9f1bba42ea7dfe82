"""The reader loop for the replicator: ``CommitLogReader.follow`` cut into chunks of masked
events, with exact progress.

``follow(report_idle=True)`` says, whenever it has nothing new, how far it has read: a
*watermark* ("everything before this position is read"), which lets destinations commit past
finished segments even when those held nothing for them (otherwise those segments could
never be released). Which segments count as finished, how undecodable entries are retried
and how errors are skipped is ``follow``'s business alone.

Chunks end on entry boundaries (all events of one commitlog entry share its position, and
a destination commits positions), after ``batch_size`` events or ``max_wait`` seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cdc_replicator.commitlog.cdc_dir import segment_file
from cdc_replicator.commitlog.errors import CommitLogError
from cdc_replicator.commitlog.reader import CaughtUp, CommitLogReader, ReadError
from cdc_replicator.events import ChangeEvent, Position
from cdc_replicator.sinks.base import DeadLetter

log = logging.getLogger(__name__)
Prepare = Callable[[list[ChangeEvent]], tuple[list[ChangeEvent], list[DeadLetter]]]
"""A chunk's last step, after masking: events to send on, and events no destination may apply
(each destination dead-letters them)."""


class BatchMasking(Protocol):
    """Masks a batch event by event as the feed reads it (``masking.masker.MaskingBatch``)."""

    def mask(self, event: ChangeEvent) -> ChangeEvent: ...

    def finish(self, events: int) -> None: ...


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
        masking: Callable[[], BatchMasking] | None = None,
    ) -> None:
        """``masking`` starts a masking batch per chunk; each event is masked as it is read (while
        it is in the CPU's caches), and ``prepare`` then sees the chunk's masked events."""
        self.reader = reader
        self.masking = masking
        self.directory = directory
        self.prepare = prepare
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.poll = poll
        self.on_error = on_error
        self.on_undecodable = on_undecodable
        self.decode_patience = decode_patience
        self.broken: set[int] = set()
        """Segments with a part that could not be read: kept in cdc_raw for inspection."""
        self.cursor: Position | None = None

    def _report(self, error: CommitLogError) -> None:
        log.error("cdc_raw: %s; skipped", error)
        named = segment_file(error.path)
        if named is not None:
            self.broken.add(named.segment_id)
        if self.on_error is not None:
            self.on_error(error)

    def _retrying(self, error: CommitLogError) -> None:
        # Most often the schema: a mutation written after ALTER TABLE reaches us before the node
        # we read system_schema from has the new column; follow() refreshes it and retries.
        log.warning("cdc_raw: %s; refreshing the schema and retrying", error)
        if self.on_undecodable is not None:
            self.on_undecodable(error)

    def run(
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
        batch: BatchMasking | None = None  # the chunk's masking, from its first event to its flush

        def flush(upto: Position | None) -> None:
            nonlocal buffer, emitted, batch
            if upto is None or (not buffer and emitted is not None and upto <= emitted):
                return
            if batch is not None:
                batch.finish(len(buffer))
                batch = None
            events, rejected = self.prepare(buffer) if buffer else ([], [])
            emit(Chunk(tuple(events), upto, time.time(), tuple(rejected)))
            emitted = upto
            buffer = []

        def take(event: ChangeEvent) -> None:
            nonlocal batch
            if self.masking is not None:
                if batch is None:
                    batch = self.masking()
                event = batch.mask(event)  # now, while the decoded event is in the CPU's caches
            buffer.append(event)

        stream = self.reader.follow(
            self.directory,
            after,
            poll_s=self.poll,
            decode_patience_s=self.decode_patience,
            report_idle=True,
            on_retry=self._retrying,
        )
        try:
            for item in stream:
                if isinstance(item, CaughtUp):
                    if item.upto is not None and (self.cursor is None or item.upto > self.cursor):
                        self.cursor = item.upto
                    flush(self.cursor)  # partial chunk and/or watermark
                    if once or should_stop():
                        return self.cursor
                    continue
                if isinstance(item, ReadError):
                    self._report(item.error)
                    continue
                if buffer and item.position != buffer[-1].position:
                    # An entry boundary: the chunk so far is whole.
                    if len(buffer) >= self.batch_size or time.monotonic() - started >= self.max_wait:
                        flush(buffer[-1].position)
                    if should_stop():
                        flush(self.cursor)
                        return self.cursor
                if not buffer:
                    started = time.monotonic()
                take(item)
                self.cursor = item.position
        finally:
            stream.close()
        return self.cursor
