"""One destination's loop: batches from the shared feed, or its own catch-up reader after an outage.

A worker is *attached* while healthy: the shared feed puts chunks in its bounded queue. When a
write fails (or the worker falls so far behind that the feed would have to wait for it), it
*detaches*: the feed stops waiting for it, so the other destinations go on. It then retries
with exponential backoff and jitter; once the destination answers, it reads ``cdc_raw``
itself from its committed position until it has caught up with the shared feed, and
re-attaches. Events at or before its committed position are skipped, so overlaps are free.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry import trace

from cdc_replicator.contract.checkpoint import DestinationProgress
from cdc_replicator.contract.config import Tuning
from cdc_replicator.events import Position
from cdc_replicator.observability.metrics import Metrics
from cdc_replicator.pipeline.backoff import Backoff
from cdc_replicator.pipeline.feed import Chunk
from cdc_replicator.sinks.base import DestinationError, Sink, TableOf

log = logging.getLogger(__name__)
CatchUp = Callable[[Position | None, Callable[[Chunk], None], Callable[[], bool]], Position | None]
"""Runs (in a thread) a private reader from a position to the first idle moment; returns its end."""
WRITE_TIMEOUT_S = 120.0


@dataclass
class FeedState:
    dispatched: Position | None = None
    """The last position the shared feed handed to attached workers."""
    read: Position | None = None
    """How far the shared feed has read (for lag: a destination there is caught up)."""


@dataclass
class Progress:
    committed: Position | None = None
    known: bool = False
    """``committed`` was read from the destination (else it is unknown, not "nothing")."""
    last_error: str | None = None
    events_total: int = 0
    last_write_time_us: int = 0
    up: bool = False
    latency_s: float | None = None


class Worker:
    def __init__(  # noqa: PLR0917 - all collaborators, each distinct
        self,
        sink: Sink,
        table_of: TableOf,
        tuning: Tuning,
        metrics: Metrics,
        feed: FeedState,
        catch_up: CatchUp,
        queue_chunks: int = 64,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.sink = sink
        self.name = sink.name
        self.table_of = table_of
        self.tuning = tuning
        self.metrics = metrics
        self.feed = feed
        self.catch_up_reader = catch_up
        self.queue: asyncio.Queue[Chunk] = asyncio.Queue(maxsize=queue_chunks)
        self.attached = False
        self.progress = Progress()
        self.backoff = Backoff(tuning.retry_initial_seconds, tuning.retry_max_seconds)
        self.tracer: trace.Tracer = tracer or trace.NoOpTracer()
        # At 0 from the start, so increase() counts the first dead letters (the alert on them needs it).
        metrics.dead_letters.labels(self.name)

    # -- state --------------------------------------------------------------------------------

    def report(self) -> DestinationProgress:
        p = self.progress
        return DestinationProgress(
            name=self.name,
            position=None if p.committed is None else str(p.committed),
            lag_seconds=self.lag(),
            last_error=p.last_error,
            events_total=p.events_total,
        )

    def lag(self) -> float | None:
        p = self.progress
        if p.committed is None:
            return None
        if self.feed.read is not None and p.committed >= self.feed.read:
            return 0.0
        if not p.last_write_time_us:
            return None
        return max(0.0, time.time() - p.last_write_time_us / 1e6)

    def backlog(self) -> int:
        queued: list[Chunk] = list(self.queue._queue)  # type: ignore[attr-defined]  # asyncio.Queue has no peek
        return sum(len(chunk.events) for chunk in queued)

    def detach(self, reason: str, kind: str) -> None:
        if self.attached:
            log.warning("destination %s detached: %s", self.name, reason, extra={"destination": self.name})
        self.attached = False
        while not self.queue.empty():
            self.queue.get_nowait()
        self.progress.up = False
        self.progress.last_error = reason
        self.metrics.up.labels(self.name).set(0)
        self.metrics.errors.labels(self.name, kind).inc()

    # -- writing ------------------------------------------------------------------------------

    async def write_chunks(self, chunks: list[Chunk]) -> None:
        committed = self.progress.committed
        upto = chunks[-1].upto
        if committed is not None and upto <= committed:
            return
        events = [e for c in chunks for e in c.events if committed is None or e.position > committed]
        rejected = [
            d
            for c in chunks
            for d in c.rejected
            if committed is None or d.event is None or d.event.position > committed
        ]
        begin = time.monotonic()
        with self.tracer.start_as_current_span("cdc.batch") as span:
            span.set_attribute("cdc.destination", self.name)
            span.set_attribute("cdc.events", len(events))
            span.set_attribute("cdc.upto", str(upto))
            try:
                result = await asyncio.wait_for(self.sink.write(events, self.table_of, upto, rejected), WRITE_TIMEOUT_S)
            except TimeoutError as exc:
                raise DestinationError(f"{self.name}: write timed out after {WRITE_TIMEOUT_S:.0f} s") from exc
            span.set_attribute("cdc.applied", result.applied)
            span.set_attribute("cdc.dead_letters", len(result.dead))
        elapsed = time.monotonic() - begin
        p = self.progress
        p.committed = upto
        p.events_total += result.applied
        p.up = True
        p.last_error = None if not result.dead else f"{len(result.dead)} events dead-lettered: {result.dead[-1].error}"
        if result.max_write_time:
            p.last_write_time_us = max(p.last_write_time_us, result.max_write_time)
        m = self.metrics
        now_us = time.time() * 1e6
        observe = m.event_lag.labels(self.name).observe
        for event in events:
            written = event.newest_timestamp()
            if written:
                observe(max(0.0, (now_us - written) / 1e6))
        m.up.labels(self.name).set(1)
        m.commit_seconds.labels(self.name).observe(elapsed)
        if events:
            m.batch_size.labels(self.name).observe(len(events))
        for table, count in result.per_table.items():
            m.events.labels(self.name, table).inc(count)
        if result.dead:
            m.dead_letters.labels(self.name).inc(len(result.dead))
            m.errors.labels(self.name, "dead_letter").inc(len(result.dead))
        m.lag.labels(self.name).set(self.lag() or 0.0)

    async def _next_chunks(self, stopping: asyncio.Event) -> list[Chunk]:
        getter = asyncio.ensure_future(self.queue.get())
        stopper = asyncio.ensure_future(stopping.wait())
        done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if getter not in done:
            getter.cancel()
            return []
        chunks = [getter.result()]
        size = len(chunks[0].events)
        while size < self.tuning.batch_size and not self.queue.empty():
            chunk = self.queue.get_nowait()
            chunks.append(chunk)
            size += len(chunk.events)
        return chunks

    async def _catch_up(self, stopping: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()

        def emit(chunk: Chunk) -> None:
            asyncio.run_coroutine_threadsafe(self.write_chunks([chunk]), loop).result()

        while not stopping.is_set():
            start = self.progress.committed
            log.info("destination %s catching up from %s", self.name, start, extra={"destination": self.name})
            end = await asyncio.to_thread(self.catch_up_reader, start, emit, stopping.is_set)
            dispatched = self.feed.dispatched
            if dispatched is None or end is None or dispatched <= end:
                # Nothing the shared feed handed out is missing: attach (atomic: same event loop).
                while not self.queue.empty():
                    self.queue.get_nowait()
                self.attached = True
                log.info("destination %s attached at %s", self.name, end, extra={"destination": self.name})
                return

    async def connect(self) -> None:
        """Start the sink and learn its committed position."""
        begin = time.monotonic()
        await self.sink.start()
        self.progress.committed = await self.sink.committed()
        self.progress.known = True
        self.progress.latency_s = time.monotonic() - begin
        self.progress.up = True
        self.progress.last_error = None
        self.metrics.up.labels(self.name).set(1)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                if not self.progress.up:
                    await self.connect()
                if not self.attached:
                    await self._catch_up(stopping)
                    continue
                chunks = await self._next_chunks(stopping)
                if chunks:
                    await self.write_chunks(chunks)
                    self.backoff.reset()
            except DestinationError as exc:
                self.detach(str(exc), "destination")
                await self._pause(stopping)
            except Exception as exc:  # a bug must not end this destination's task unseen
                # The task would die quietly and the destination stall while /health said ok. Report it
                # as an internal error (health 503, cdc_errors_total, last error) and retry like an outage.
                log.exception("destination %s: unexpected error", self.name, extra={"destination": self.name})
                self.detach(f"internal error: {type(exc).__name__}: {exc}", "internal")
                await self._pause(stopping)
        await self.drain()

    async def _pause(self, stopping: asyncio.Event) -> None:
        delay = self.backoff.next()
        log.warning("destination %s: retry in %.1f s", self.name, delay, extra={"destination": self.name})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)

    async def drain(self) -> None:
        """On shutdown: commit what is queued (one attempt: a replay after restart converges anyway)."""
        if not self.attached:
            return
        chunks = []
        while not self.queue.empty():
            chunks.append(self.queue.get_nowait())
        if chunks:
            try:
                await self.write_chunks(chunks)
            except DestinationError as exc:
                log.warning("destination %s: final batch not committed: %s", self.name, exc)
