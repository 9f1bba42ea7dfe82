"""The replicator's periodic work: the checkpoint file, releasing finished segments, the gauges.

Every ``checkpoint.intervalSeconds`` (and once more at stop): the checkpoint file the operator's
sidecar publishes is rewritten from the workers' reports; segments every destination has
committed past are deleted from cdc_raw (``offsets.releasable``), except those with a part that
could not be read, kept for inspection; and the gauges of cdc_raw and of each destination
(backlog, lag) are set. Every :data:`TOTAL_SPACE_REFRESH_S`: the node's ``cdc_total_space``
(``cdc_total_space_bytes``, the limit the cdc_raw alerts compare ``cdc_raw_bytes`` with).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cdc_replicator.commitlog.cdc_dir import list_segments, release
from cdc_replicator.contract.config import ReplicatorConfig
from cdc_replicator.observability.metrics import Metrics
from cdc_replicator.pipeline import checkpoint, offsets
from cdc_replicator.pipeline.worker import Worker
from cdc_replicator.schema import total_space

log = logging.getLogger("cdc_replicator")
TOTAL_SPACE_REFRESH_S = 600.0
"""How often the node's cdc_total_space is read again (it can be changed at run time over JMX)."""


class Housekeeping:
    def __init__(self, config: ReplicatorConfig, workers: Sequence[Worker], metrics: Metrics, broken: set[int]) -> None:
        self.config = config
        self.workers = workers
        self.metrics = metrics
        self.broken = broken
        """Segments with a part that could not be read (the feeds add to it): never released."""
        self.cdc_raw = Path(config.source.cdc_raw_path)
        self.session: Any = None
        """The Cassandra session, once connected: cdc_total_space is read through it."""
        self._total_space_read = -TOTAL_SPACE_REFRESH_S

    def write_checkpoint(self) -> None:
        text = checkpoint.render(self.config.source.node_name, [w.report() for w in self.workers])
        checkpoint.write(Path(self.config.checkpoint.path), text)

    def release_segments(self) -> int:
        """Delete the segments every destination is past; how many went."""
        if not self.config.source.delete_consumed_segments:
            return 0
        if any(not w.progress.known for w in self.workers):
            return 0
        done = offsets.releasable(
            list_segments(self.cdc_raw), (w.progress.committed for w in self.workers), keep=self.broken
        )
        for segment in done:
            release(segment)
            log.info("released segment %s", segment.segment_id)
        self.metrics.released.inc(len(done))
        return len(done)

    def gauges(self) -> None:
        segments = list_segments(self.cdc_raw)
        size = 0
        for segment in segments:
            with contextlib.suppress(FileNotFoundError):  # released meanwhile
                size += segment.log.stat().st_size
        self.metrics.raw_bytes.set(size)
        self.metrics.segments.set(len(segments))
        for worker in self.workers:
            self.metrics.backlog.labels(worker.name).set(worker.backlog())
            lag = worker.lag()
            if lag is not None:
                self.metrics.lag.labels(worker.name).set(lag)

    async def refresh_total_space(self) -> None:
        """``cdc_total_space_bytes``: the configured value, else the node's own setting (see ``total_space``)."""
        configured = self.config.source.cdc_total_space_bytes
        if configured is not None:
            self.metrics.total_space.set(configured)
            return
        if self.session is None or self.session.is_shutdown:
            return
        value = await asyncio.to_thread(total_space.from_cassandra, self.session)
        if value is None and self.metrics.total_space.value is None:
            log.warning(
                "cdc_total_space unknown: no node answered from system_views.settings; set "
                "source.cdcTotalSpaceBytes (spec.source.cdcTotalSpace) for the cdc_raw alerts"
            )
        if value is not None:
            self.metrics.total_space.set(value)

    async def run(self, stopping: asyncio.Event) -> None:
        """Until ``stopping``: the periodic work; an I/O failure is logged and tried again next time."""
        interval = self.config.checkpoint.interval_seconds
        while not stopping.is_set():
            try:
                if time.monotonic() - self._total_space_read >= TOTAL_SPACE_REFRESH_S:
                    self._total_space_read = time.monotonic()
                    await self.refresh_total_space()
                self.gauges()
                await asyncio.to_thread(self.write_checkpoint)
                await asyncio.to_thread(self.release_segments)
            except OSError as exc:
                log.error("periodic work failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval)

    def finish(self) -> None:
        """The last checkpoint and release, once the workers have committed what they held."""
        self.write_checkpoint()
        self.release_segments()
