"""``cdc-replicator run --config FILE``: wires the reader, masking, sinks, offsets and endpoints.

::

    cdc_raw ─ Feed (thread) ─ mask ─ dispatch ─┬─ Worker(postgres)   ─ sink
                                               ├─ Worker(clickhouse) ─ sink
                                               └─ Worker(…)          ─ sink
    periodic: checkpoint file, segment release, gauges; /metrics and /health

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
import time
from functools import partial
from pathlib import Path
from typing import Any

from cdc_replicator.commitlog.cdc_dir import list_segments, release
from cdc_replicator.commitlog.errors import CommitLogError
from cdc_replicator.commitlog.mutation import MutationDecoder
from cdc_replicator.commitlog.reader import CommitLogReader
from cdc_replicator.contract.config import ConfigError, ReplicatorConfig, load
from cdc_replicator.cql.types import CqlType
from cdc_replicator.events import ChangeEvent, Operation, Position
from cdc_replicator.observability import logs, tracing
from cdc_replicator.observability.http import HttpServer
from cdc_replicator.observability.metrics import Metrics
from cdc_replicator.pipeline import checkpoint, offsets
from cdc_replicator.pipeline.backoff import Backoff
from cdc_replicator.pipeline.factory import build_sink
from cdc_replicator.pipeline.feed import Chunk, Feed
from cdc_replicator.pipeline.worker import FeedState, Worker
from cdc_replicator.schema.model import TableSchema
from cdc_replicator.schema.registry import SchemaRegistry
from cdc_replicator.sinks.base import DeadLetter
from cdc_replicator.sinks.layout import DestinationTypes
from cdc_replicator.tls import TlsConfigError, client_context, explain

log = logging.getLogger("cdc_replicator")
HELP = "follow a node's cdc_raw and replicate to the configured destinations"
DISPATCH_TIMEOUT_S = 2.0
"""A worker whose queue stays full this long is detached (it catches up on its own later)."""


def _cassandra_session(config: ReplicatorConfig) -> Any:
    from cassandra.auth import PlainTextAuthProvider  # noqa: PLC0415 - driver import is slow
    from cassandra.cluster import Cluster  # noqa: PLC0415

    source = config.source
    points: list[Any] = []
    for point in source.contact_points:
        host, _, port = point.rpartition(":")
        points.append((host, int(port)) if host and port.isdigit() else point)
    kwargs: dict[str, Any] = {"port": source.port, "protocol_version": 5}
    if source.credentials is not None:
        user, password = source.credentials.resolve()
        kwargs["auth_provider"] = PlainTextAuthProvider(user or "", password or "")
    context = client_context(source.tls, ", ".join(source.contact_points))
    if context is not None:
        kwargs["ssl_context"] = context
    from cassandra.policies import DCAwareRoundRobinPolicy, RoundRobinPolicy  # noqa: PLC0415

    kwargs["load_balancing_policy"] = (
        DCAwareRoundRobinPolicy(source.local_datacenter) if source.local_datacenter else RoundRobinPolicy()
    )
    return Cluster(points, **kwargs).connect()


def _cassandra_error(exc: BaseException, config: ReplicatorConfig) -> str:
    """The driver's failure in one line; TLS failures name each endpoint and the reason."""
    tls = config.source.tls
    errors = getattr(exc, "errors", None)  # NoHostAvailable: {endpoint: exception}
    if isinstance(errors, dict) and errors:
        parts = [explain(e, str(host), tls) or f"{host}: {e}" for host, e in errors.items()]
        return "; ".join(parts)
    return explain(exc, ", ".join(config.source.contact_points), tls) or str(exc)


class App:
    def __init__(self, config: ReplicatorConfig, registry: SchemaRegistry | None = None) -> None:
        self.config = config
        self.metrics = Metrics()
        self.stopping = asyncio.Event()
        self.feed_state = FeedState()
        self.registry = registry
        self.session: Any = None
        self.masker: Any = None
        self.masking_metrics: Any = None
        self.keys: Any = None
        """The masking keys' provider (environment, Vault, or both), once loaded."""
        self.key_store: Any = None
        """The Vault key store, when keys come from Vault (refreshed on its own thread)."""
        self.workers: list[Worker] = []
        self.cdc_raw = Path(config.source.cdc_raw_path)
        self.broken: set[int] = set()
        self.http: HttpServer | None = None
        self.cassandra_error: str | None = None
        """Why the last attempt to reach Cassandra failed (TLS failures name endpoint and reason)."""

    # -- selection and masking ----------------------------------------------------------------

    def _include(self, table: TableSchema) -> bool:
        source = self.config.source
        return table.cdc and (table.keyspace in source.keyspaces or table.qualified_name in source.tables)

    def _include_keyspace(self, keyspace: str) -> bool:
        source = self.config.source
        return keyspace in source.keyspaces or any(t.split(".", 1)[0] == keyspace for t in source.tables)

    def table_of(self, event: ChangeEvent) -> TableSchema | None:
        assert self.registry is not None
        return self.registry.table(event.table_id.bytes)

    def _types_of(self, table: TableSchema) -> dict[str, CqlType]:
        if self.masker is None:
            return {}
        plan = self.masker.plan(table)
        return DestinationTypes(plan.destination_types, plan.hidden)

    def _prepare(self, masked: list[ChangeEvent]) -> tuple[list[ChangeEvent], list[DeadLetter]]:
        """A chunk the feed masked as it read it: a range deletion that masking made inexact
        (hashes keep no order) is refused."""
        if self.masker is None:
            return masked, []
        from cdc_replicator.masking.engine import range_survives_masking  # noqa: PLC0415

        if not any(event.operation is Operation.DELETE_RANGE for event in masked):
            return masked, []  # the common case: no per-event schema and plan look-ups
        kept: list[ChangeEvent] = []
        rejected: list[DeadLetter] = []
        for event in masked:
            table = self.table_of(event) if event.operation is Operation.DELETE_RANGE else None
            if table is not None and not range_survives_masking(self.masker.plan(table), event):
                reason = "range deletion over a masked clustering column cannot be applied exactly"
                rejected.append(DeadLetter(event, reason, event.keyspace, event.table))
                self.metrics.errors.labels("reader", "masked_range").inc()
                continue
            kept.append(event)
        return kept, rejected

    def _load_keys(self) -> None:
        """Read the masking keys (environment and/or Vault) once; a missing or unreadable key is a
        ``ConfigError`` naming the key and where it was looked for, never its value."""
        masking = self.config.masking
        if not masking.policies:
            return
        from cdc_replicator.masking.audit import MaskingMetrics  # noqa: PLC0415
        from cdc_replicator.masking.keys import (  # noqa: PLC0415
            KeyLoadError,
            MergedKeys,
            StaticKeys,
            VaultKeyStore,
            keys_from_environment,
        )

        self.masking_metrics = MaskingMetrics(self.metrics.registry)
        providers: list[StaticKeys | VaultKeyStore] = []
        try:
            if masking.keys:
                static = keys_from_environment({k.name: k.env for k in masking.keys})
                for name, material in static.snapshot().keys.items():
                    self.masking_metrics.key_version.labels(name).set(material.version)
                providers.append(static)
            if masking.vault is not None:
                self.key_store = VaultKeyStore(masking.vault, masking.vault.keys, self.masking_metrics)
                self.key_store.load()
                providers.append(self.key_store)
        except KeyLoadError as exc:
            raise ConfigError(f"masking keys: {exc}") from None
        self.keys = providers[0] if len(providers) == 1 else MergedKeys(*providers)

    def _setup_masking(self) -> None:
        if self.keys is None:
            return
        from cdc_replicator.masking.engine import PolicyError  # noqa: PLC0415
        from cdc_replicator.masking.masker import Masker, merge_policies  # noqa: PLC0415

        try:
            self.masker = Masker(merge_policies(self.config.masking.policies), self.keys, self.masking_metrics)
            assert self.registry is not None
            self.masker.check([t for t in self.registry.tables() if self._include(t)])
        except PolicyError as exc:
            raise ConfigError(str(exc)) from None
        if self.key_store is not None:
            self.key_store.start()  # refresh on a timer from now on

    def _feed(self) -> Feed:
        assert self.registry is not None
        decoder = MutationDecoder(self.registry, self._include, self._include_keyspace)
        tuning = self.config.tuning

        def on_error(exc: CommitLogError) -> None:
            self.metrics.errors.labels("reader", "commitlog").inc()

        def on_undecodable(exc: CommitLogError) -> None:
            self.metrics.errors.labels("reader", "schema_lag").inc()  # the reader refreshes the schema

        return Feed(
            CommitLogReader(decoder, read_ahead=True),
            self.cdc_raw,
            self._prepare,
            masking=None if self.masker is None else partial(self.masker.batch, self.table_of),
            batch_size=tuning.batch_size,
            max_wait=tuning.batch_max_wait_seconds,
            poll=tuning.poll_interval_seconds,
            on_error=on_error,
            on_undecodable=on_undecodable,
        )

    def _catch_up(self, after: Position | None, emit: Any, should_stop: Any) -> Position | None:
        feed = self._feed()
        try:
            return feed.run(after, emit, should_stop, once=True)
        finally:
            self.broken |= feed.broken

    # -- the shared feed ------------------------------------------------------------------------

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

    # -- periodic work --------------------------------------------------------------------------

    def write_checkpoint(self) -> None:
        text = checkpoint.render(self.config.source.node_name, [w.report() for w in self.workers])
        checkpoint.write(Path(self.config.checkpoint.path), text)

    def release_segments(self) -> int:
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

    def _gauges(self) -> None:
        segments = list_segments(self.cdc_raw)
        size = 0
        for segment in segments:
            with contextlib.suppress(FileNotFoundError):
                size += segment.log.stat().st_size
        self.metrics.raw_bytes.set(size)
        self.metrics.segments.set(len(segments))
        for worker in self.workers:
            self.metrics.backlog.labels(worker.name).set(worker.backlog())
            lag = worker.lag()
            if lag is not None:
                self.metrics.lag.labels(worker.name).set(lag)

    async def _periodic(self) -> None:
        interval = self.config.checkpoint.interval_seconds
        while not self.stopping.is_set():
            try:
                self._gauges()
                await asyncio.to_thread(self.write_checkpoint)
                await asyncio.to_thread(self.release_segments)
            except OSError as exc:
                log.error("periodic work failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), interval)

    async def health(self) -> tuple[bool, dict[str, Any]]:
        deps: dict[str, Any] = {}
        healthy = True
        for worker in self.workers:
            begin = time.monotonic()
            try:
                latency = await asyncio.wait_for(worker.sink.ping(), 5) if worker.progress.up else None
                status = "up" if worker.progress.up else "down"
            except Exception as exc:
                latency, status = time.monotonic() - begin, "down"
                worker.progress.last_error = str(exc)
            healthy &= status == "up"
            deps[worker.name] = {
                "status": status,
                "latency_ms": None if latency is None else round(latency * 1000, 2),
                "attached": worker.attached,
                "position": None if worker.progress.committed is None else str(worker.progress.committed),
                "lag_seconds": worker.lag(),
                "last_error": worker.progress.last_error,
            }
        readable = self.cdc_raw.is_dir()
        healthy &= readable
        deps["cdc_raw"] = {"status": "up" if readable else "down", "path": str(self.cdc_raw)}
        cassandra_up = self.registry is not None and (self.session is None or not self.session.is_shutdown)
        healthy &= cassandra_up
        deps["cassandra"] = {"status": "up" if cassandra_up else "down", "last_error": self.cassandra_error}
        return healthy, {"status": "healthy" if healthy else "unhealthy", "dependencies": deps}

    # -- lifecycle ------------------------------------------------------------------------------

    async def _connect_schema(self) -> bool:
        """Connect to Cassandra and load the schema, retrying until it works; False if stopped first."""
        config = self.config
        backoff = Backoff(config.tuning.retry_initial_seconds, config.tuning.retry_max_seconds)
        while self.session is None:
            try:
                self.session = await asyncio.to_thread(_cassandra_session, config)
            except TlsConfigError:
                raise  # a CA or key file that cannot be loaded will not get better by retrying
            except Exception as exc:  # the driver raises several kinds; all mean "retry"
                delay = backoff.next()
                self.cassandra_error = _cassandra_error(exc, config)
                log.error("cannot reach Cassandra for the schema (%s); retry in %.1f s", self.cassandra_error, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), delay)
                if self.stopping.is_set():
                    return False
        self.cassandra_error = None
        session = self.session
        from cdc_replicator.schema.loader import load_snapshot  # noqa: PLC0415

        self.registry = await asyncio.to_thread(SchemaRegistry, lambda: load_snapshot(session))
        return True

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

    async def run(self) -> int:
        config = self.config
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        self._load_keys()  # before anything else: wrong keys must stop us before we read a byte
        self.http = HttpServer(self.metrics.registry, self.health, port=config.observability.metrics_port)
        await self.http.start()
        if self.registry is None and not await self._connect_schema():
            await self.http.close()
            return 0
        try:
            self._setup_masking()
        except ConfigError:
            await self.http.close()
            if self.session is not None:
                self.session.cluster.shutdown()
            raise
        types_of = self._types_of if self.masker is not None else None
        spans = tracing.tracer(
            config.observability.tracing,
            config.observability.otlp_endpoint,
            {"cdc.pipeline": config.pipeline, "cdc.node": config.source.node_name},
        )
        for destination in config.destinations:
            sink = build_sink(destination, pipeline=config.pipeline, node=config.source.node_name, types_of=types_of)
            self.workers.append(
                Worker(sink, self.table_of, config.tuning, self.metrics, self.feed_state, self._catch_up, tracer=spans)
            )
        for worker in self.workers:
            try:
                await asyncio.wait_for(worker.connect(), 15)
                worker.attached = True
            except (Exception, TimeoutError) as exc:
                worker.detach(f"unreachable at start: {exc}", "unreachable")
                log.error("destination %s unreachable at start: %s", worker.name, exc)
        _tune_gc()
        start = offsets.reader_start({w.name: w.progress.committed for w in self.workers if w.progress.known})
        log.info("replicator started; reader starts after %s", start, extra={"pipeline": config.pipeline})
        tasks = [asyncio.create_task(w.run(self.stopping), name=f"worker-{w.name}") for w in self.workers]
        periodic = asyncio.create_task(self._periodic(), name="periodic")
        feed = asyncio.create_task(asyncio.to_thread(self._run_feed, start, loop), name="feed")
        failure = await self._until_stopped(feed)
        await asyncio.gather(*tasks)
        await periodic
        self.write_checkpoint()
        self.release_segments()
        for worker in self.workers:
            with contextlib.suppress(Exception):
                await worker.sink.close()
        await self.http.close()
        if self.key_store is not None:
            self.key_store.stop()
        if self.session is not None:
            self.session.cluster.shutdown()
        log.info("stopped")
        return 0 if failure is None else 1


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


def add_parser(subparsers: Any) -> None:
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
