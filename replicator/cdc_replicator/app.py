"""``cdc-replicator run --config FILE``: one replicator, its stages built from the config.

::

    cdc_raw ─ Feed (thread, masks as it reads) ─ dispatch ─┬─ Worker(postgres)   ─ sink
                                                           ├─ Worker(clickhouse) ─ sink
                                                           └─ Worker(…)          ─ sink
    beside them: Housekeeping (checkpoint file, segment release, gauges); /metrics and /health

The shared feed starts at the lowest committed position among the destinations reachable
at start; a destination down at start (or later) catches up with its own reader.
SIGTERM (or SIGINT) stops the feed at an entry boundary, lets every worker commit what it
holds, writes the checkpoint and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdc_replicator.commitlog.errors import CommitLogError
from cdc_replicator.commitlog.mutation import MutationDecoder
from cdc_replicator.commitlog.reader import CommitLogReader
from cdc_replicator.contract.config import ConfigError, ReplicatorConfig, load
from cdc_replicator.events import ChangeEvent, Position
from cdc_replicator.observability import logs, tracing
from cdc_replicator.observability.http import HttpServer
from cdc_replicator.observability.metrics import Metrics, labelled
from cdc_replicator.pipeline import offsets
from cdc_replicator.pipeline.backoff import Backoff
from cdc_replicator.pipeline.factory import build_sink
from cdc_replicator.pipeline.feed import Chunk, Feed
from cdc_replicator.pipeline.health import check_health
from cdc_replicator.pipeline.housekeeping import Housekeeping
from cdc_replicator.pipeline.masking import MaskingStage, unmasked
from cdc_replicator.pipeline.worker import FeedState, Worker
from cdc_replicator.schema.loader import load_snapshot
from cdc_replicator.schema.model import TableSchema
from cdc_replicator.schema.registry import SchemaRegistry
from cdc_replicator.schema.session import connect_cassandra, explain_failure
from cdc_replicator.tls import TlsConfigError

if TYPE_CHECKING:
    from cassandra.cluster import Session

log = logging.getLogger("cdc_replicator")
HELP = "follow a node's cdc_raw and replicate to the configured destinations"
DISPATCH_TIMEOUT_S = 2.0
"""A worker whose queue stays full this long is detached (it catches up on its own later)."""
CONNECT_TIMEOUT_S = 15.0
"""How long a destination may take to answer at start before it is left to catch up later."""


class App:
    """One replicator: started in order, then its stages side by side until SIGTERM.

    Start (``_start``): the masking keys first (a wrong key must stop us before we read a byte),
    /metrics and /health, Cassandra and the schema (retried until reachable), the masking
    policies against the replicated tables, the destinations. Whatever a step acquires goes on
    one exit stack, so a failed start and a normal stop release the same things, in reverse.

    Stages (``_run_stages``): one worker per destination, the housekeeping, and the shared feed
    (in a thread). Each runs until ``stopping`` is set; then the workers commit what they hold.
    A new stage (an initial snapshot, say) is one more task there that ends when ``stopping``
    is set, and whatever it must release goes on the exit stack in ``_start``.
    """

    def __init__(self, config: ReplicatorConfig, registry: SchemaRegistry | None = None) -> None:
        self.config = config
        self.metrics = Metrics()
        self.stopping = asyncio.Event()
        self.registry = registry
        self.session: Session | None = None
        self.cassandra_error: str | None = None
        """Why the last attempt to reach Cassandra failed (TLS failures name endpoint and reason)."""
        self.masking: MaskingStage | None = None
        self.workers: list[Worker] = []
        self.feed_state = FeedState()
        self.cdc_raw = Path(config.source.cdc_raw_path)
        self.broken: set[int] = set()
        """Segments with a part that could not be read: kept in cdc_raw for inspection."""
        self.housekeeping = Housekeeping(config, self.workers, self.metrics, self.broken)

    # -- what is replicated -----------------------------------------------------------------------

    def _include(self, table: TableSchema) -> bool:
        source = self.config.source
        return table.cdc and (table.keyspace in source.keyspaces or table.qualified_name in source.tables)

    def _include_keyspace(self, keyspace: str) -> bool:
        source = self.config.source
        return keyspace in source.keyspaces or any(t.split(".", 1)[0] == keyspace for t in source.tables)

    def table_of(self, event: ChangeEvent) -> TableSchema | None:
        assert self.registry is not None
        return self.registry.table(event.table_id.bytes)

    # -- the feed ---------------------------------------------------------------------------------

    def _feed(self) -> Feed:
        assert self.registry is not None
        decoder = MutationDecoder(self.registry, self._include, self._include_keyspace)
        tuning = self.config.tuning
        errors = self.metrics.errors

        def on_error(_: CommitLogError) -> None:
            errors.labels("reader", "commitlog").inc()

        def on_undecodable(_: CommitLogError) -> None:
            errors.labels("reader", "schema_lag").inc()  # the reader refreshes the schema

        masking = self.masking
        return Feed(
            CommitLogReader(decoder, read_ahead=True),
            self.cdc_raw,
            unmasked if masking is None else masking.prepare,
            masking=None if masking is None else masking.batch,
            batch_size=tuning.batch_size,
            max_wait=tuning.batch_max_wait_seconds,
            poll=tuning.poll_interval_seconds,
            on_error=on_error,
            on_undecodable=on_undecodable,
        )

    def _catch_up(
        self, after: Position | None, emit: Callable[[Chunk], None], should_stop: Callable[[], bool]
    ) -> Position | None:
        """A worker's own reader (``worker.CatchUp``): from ``after`` to the first idle moment."""
        feed = self._feed()
        try:
            return feed.run(after, emit, should_stop, once=True)
        finally:
            self.broken |= feed.broken

    async def _dispatch(self, chunk: Chunk) -> None:
        self.feed_state.dispatched = chunk.upto
        self.feed_state.read = chunk.upto
        for worker in self.workers:
            if not worker.attached:
                continue
            try:
                await asyncio.wait_for(worker.queue.put(chunk), DISPATCH_TIMEOUT_S)
            except TimeoutError:
                worker.detach(f"fell {DISPATCH_TIMEOUT_S:.0f} s behind the shared feed", "slow")

    def _run_feed(self, start: Position | None, loop: asyncio.AbstractEventLoop) -> None:
        feed = self._feed()

        def emit(chunk: Chunk) -> None:
            asyncio.run_coroutine_threadsafe(self._dispatch(chunk), loop).result()

        try:
            feed.run(start, emit, self.stopping.is_set)
        finally:
            self.broken |= feed.broken

    async def health(self) -> tuple[bool, dict[str, Any]]:
        cassandra_up = self.registry is not None and (self.session is None or not self.session.is_shutdown)
        return await check_health(self.workers, self.cdc_raw, cassandra_up, self.cassandra_error)

    # -- start ------------------------------------------------------------------------------------

    async def _connect_schema(self, resources: contextlib.AsyncExitStack) -> bool:
        """Connect to Cassandra and load the schema, retrying until it works; False if stopped first."""
        source, tuning = self.config.source, self.config.tuning
        backoff = Backoff(tuning.retry_initial_seconds, tuning.retry_max_seconds)
        while self.session is None:
            try:
                self.session = await asyncio.to_thread(connect_cassandra, source)
            except (TlsConfigError, ConfigError):
                raise  # a CA file or contact point that cannot be used will not get better by retrying
            except Exception as exc:  # the driver raises several kinds; all mean "retry"
                delay = backoff.next()
                self.cassandra_error = explain_failure(exc, source)
                log.error("cannot reach Cassandra for the schema (%s); retry in %.1f s", self.cassandra_error, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), delay)
                if self.stopping.is_set():
                    return False
        session = self.session
        resources.callback(session.cluster.shutdown)
        self.housekeeping.session = session  # it reads the node's cdc_total_space
        self.cassandra_error = None
        self.registry = await asyncio.to_thread(SchemaRegistry, lambda: load_snapshot(session))
        return True

    async def _connect_destinations(self, resources: contextlib.AsyncExitStack) -> None:
        """A worker per destination; one unreachable now is detached and catches up later."""
        config = self.config
        types_of = None if self.masking is None else self.masking.types_of
        spans = tracing.tracer(
            config.observability.tracing,
            config.observability.otlp_endpoint,
            {"cdc.pipeline": config.pipeline, "cdc.node": config.source.node_name},
        )
        for destination in config.destinations:
            sink = build_sink(destination, pipeline=config.pipeline, node=config.source.node_name, types_of=types_of)
            worker = Worker(
                sink, self.table_of, config.tuning, self.metrics, self.feed_state, self._catch_up, tracer=spans
            )
            self.workers.append(worker)
            resources.push_async_callback(_close, worker)
        for worker in self.workers:
            try:
                await asyncio.wait_for(worker.connect(), CONNECT_TIMEOUT_S)
                worker.attached = True
            except (Exception, TimeoutError) as exc:
                worker.detach(f"unreachable at start: {exc}", "unreachable")
                log.error("destination %s unreachable at start: %s", worker.name, exc)

    async def _start(self, resources: contextlib.AsyncExitStack) -> bool:
        """Everything the stages need, in order; False when stopped before Cassandra answered."""
        config = self.config
        self.masking = MaskingStage.load(config.masking, self.metrics, self.table_of)
        exposed = labelled(self.metrics.registry, {"pipeline": config.pipeline, "node": config.source.node_name})
        http = HttpServer(exposed, self.health, port=config.observability.metrics_port)
        await http.start()
        resources.push_async_callback(http.close)
        if self.registry is None and not await self._connect_schema(resources):
            return False
        assert self.registry is not None
        if self.masking is not None:
            self.masking.start([t for t in self.registry.tables() if self._include(t)])
            resources.callback(self.masking.stop)
        await self._connect_destinations(resources)
        return True

    # -- run --------------------------------------------------------------------------------------

    async def _until_stopped(self, feed: asyncio.Task[None]) -> BaseException | None:
        """Wait for SIGTERM/SIGINT, or for the reader to die; then let the reader finish.

        A reader that dies (e.g. on a table created after start that the masking policy cannot
        mask) stops the replicator instead of leaving it half-alive and "healthy"; a restart
        then refuses with the reason. Returns the reader's error, if it died. Our errors name
        tables, columns and rules, never values.
        """
        stop = asyncio.create_task(self.stopping.wait(), name="stop")
        await asyncio.wait((feed, stop), return_when=asyncio.FIRST_COMPLETED)
        failure = None if stop.done() else feed.exception()
        if failure is not None:
            log.error("the reader stopped: %s: %s; stopping the replicator", type(failure).__name__, failure)
        self.stopping.set()
        await stop
        log.info("stopping: draining in-flight batches")
        if failure is None:
            await feed
        return failure

    async def _run_stages(self) -> BaseException | None:
        """The stages side by side until stopped; the reader's error, if it died."""
        loop = asyncio.get_running_loop()
        _tune_gc()
        start = offsets.reader_start({w.name: w.progress.committed for w in self.workers if w.progress.known})
        log.info("replicator started; reader starts after %s", start, extra={"pipeline": self.config.pipeline})
        stages = [asyncio.create_task(w.run(self.stopping), name=f"worker-{w.name}") for w in self.workers]
        stages.append(asyncio.create_task(self.housekeeping.run(self.stopping), name="housekeeping"))
        feed = asyncio.create_task(asyncio.to_thread(self._run_feed, start, loop), name="feed")
        failure = await self._until_stopped(feed)
        await asyncio.gather(*stages)
        self.housekeeping.finish()
        return failure

    async def run(self) -> int:
        """0 once stopped by a signal, 1 when the reader died; a ``ConfigError`` when it cannot start."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        async with contextlib.AsyncExitStack() as resources:
            if not await self._start(resources):
                return 0
            failure = await self._run_stages()
        log.info("stopped")
        return 0 if failure is None else 1


async def _close(worker: Worker) -> None:
    with contextlib.suppress(Exception):  # a sink that cannot close cleanly has nothing left to lose
        await worker.sink.close()


def _tune_gc() -> None:
    """Events are many small immutable objects without cycles: collect young garbage less
    often, and never rescan what startup built (schemas, plans, drivers)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


RUN_DESCRIPTION = """\
Follow one Cassandra node's cdc_raw and replicate every change, masked, into each
configured destination (postgres, timescaledb, clickhouse), exactly once in effect:
destinations merge cells last-writer-wins on Cassandra's write timestamps, so replays
and replica duplicates change nothing.

The config file (YAML, camelCase keys) names the source node and its cdc_raw, the
destinations, masking policies and keys, the checkpoint file, tuning and the metrics
port. Secrets never appear in it: credentials and masking keys are names of
environment variables (usernameEnv/passwordEnv, masking.keys[].env), or masking keys
are read from Vault/OpenBao KV v2 paths (masking.vault: address, auth token or
kubernetes, refreshSeconds, keys[] with mount/path/field), re-read on a timer. An
invalid file, a policy that does not fit the tables, or a masking key that cannot be
read (the error names the key and its path, never its value) is refused at start
(exit status 2).

While running:
  /metrics and /health     on observability.metricsPort (health is 503 while a
                           destination or Cassandra is unreachable)
  checkpoint.path          per-destination position, lag and last error, rewritten
                           atomically for the operator's checkpoint sidecar
  logs                     JSON lines on stderr; masked fields by name, never values

Each destination keeps its own committed offset and resumes from it; a destination that
is down retries with backoff and catches up without holding the others. A segment is
deleted from cdc_raw only when every destination is past it (deleteConsumedSegments).
SIGTERM or SIGINT: stop reading at an entry boundary, commit what is in flight, write
the checkpoint, exit 0.
"""


def add_parser(subparsers: Any) -> None:  # argparse's _SubParsersAction is private
    parser = subparsers.add_parser(
        "run", help=HELP, description=RUN_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config",
        required=True,
        type=Path,
        metavar="FILE",
        help="the replicator config (YAML, the shape of cdc_replicator.contract.config.ReplicatorConfig)",
    )
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    try:
        config = load(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    logs.setup(config.observability.log_level, {"pipeline": config.pipeline, "node": config.source.node_name})
    try:
        return asyncio.run(App(config).run())
    except ConfigError as exc:  # e.g. a credential variable named but not set
        log.error("%s", exc)
        return 2
