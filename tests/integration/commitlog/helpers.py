"""Helpers for commitlog tests against the lab's real Cassandra.

Tests write through node 1 at consistency ALL into keyspaces replicated to every node, so
node 1's ``cdc_raw`` holds every mutation whatever the ring looks like, and read node 1's
segments with read-ahead (no waiting for the 10 s commitlog sync).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cassandra import ConsistencyLevel, Unavailable
from cassandra.cluster import NoHostAvailable
from cassandra.query import BatchStatement, BatchType, SimpleStatement
from cdc_replicator.commitlog.cdc_dir import list_segments
from cdc_replicator.commitlog.mutation import MutationDecoder
from cdc_replicator.commitlog.reader import CommitLogReader, end_position
from cdc_replicator.events import ChangeEvent, Position
from cdc_replicator.schema.loader import load_snapshot
from cdc_replicator.schema.model import TableSchema
from cdc_replicator.schema.registry import SchemaRegistry

_counter = itertools.count()


def unique_keyspace(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{next(_counter)}_{int(time.time() * 1000) % 10_000_000}"


def create_keyspace(session: Any, name: str, nodes: int) -> None:
    session.execute(
        SimpleStatement(
            f"CREATE KEYSPACE {name} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {nodes}}}",
            consistency_level=ConsistencyLevel.ALL,
        )
    )


def drop_keyspaces(session: Any, prefix: str) -> None:
    """Drop the keyspace ``prefix`` and those named after it (per-seed keyspaces)."""
    names = [r.keyspace_name for r in session.execute("SELECT keyspace_name FROM system_schema.keyspaces")]
    for name in names:
        if name == prefix or name.startswith(prefix + "_"):
            run(session, f"DROP KEYSPACE IF EXISTS {name}")


def run(session: Any, cql: str, params: Iterable[Any] | None = None) -> Any:
    """Execute at consistency ALL: the write is in node 1's commitlog when this returns.

    On two shared cores gossip sometimes marks a busy node down for a moment; Cassandra
    then refuses the write up front (Unavailable: nothing was applied), so it is retried.
    """
    deadline = time.monotonic() + 60
    while True:
        try:
            return session.execute(SimpleStatement(cql, consistency_level=ConsistencyLevel.ALL), params)
        except (Unavailable, NoHostAvailable) as exc:
            refused = isinstance(exc, Unavailable) or all(isinstance(e, Unavailable) for e in exc.errors.values())
            if not refused or time.monotonic() > deadline:
                raise
            time.sleep(1)


def run_batch(session: Any, statements: list[tuple[str, tuple[Any, ...]]], logged: bool = True) -> None:
    batch = BatchStatement(
        batch_type=BatchType.LOGGED if logged else BatchType.UNLOGGED, consistency_level=ConsistencyLevel.ALL
    )
    for cql, params in statements:
        batch.add(SimpleStatement(cql), params)
    session.execute(batch)


def start_position(cdc_raw: Path) -> Position | None:
    """The position after the last entry written so far (reading ahead of the idx)."""
    return end_position(cdc_raw)


def registry_for(session: Any) -> SchemaRegistry:
    return SchemaRegistry(lambda: load_snapshot(session), min_refresh_interval_s=0.0)


def read_events(
    cdc_raw: Path,
    registry: SchemaRegistry,
    keyspace: str,
    after: Position | None,
    include: Callable[[TableSchema], bool] | None = None,
    read_ahead: bool = True,
) -> list[ChangeEvent]:
    decoder = MutationDecoder(registry, include, lambda ks: ks == keyspace)
    reader = CommitLogReader(decoder, read_ahead=read_ahead)
    return list(reader.events(list_segments(cdc_raw), after))


def wait_for_events(
    cdc_raw: Path,
    registry: SchemaRegistry,
    keyspace: str,
    after: Position | None,
    done: Callable[[list[ChangeEvent]], bool],
    timeout_s: float = 30.0,
    include: Callable[[TableSchema], bool] | None = None,
) -> list[ChangeEvent]:
    """Re-read until ``done(events)``; read-ahead normally makes the first read enough."""
    deadline = time.monotonic() + timeout_s
    while True:
        events = read_events(cdc_raw, registry, keyspace, after, include)
        if done(events) or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


def only(events: list[ChangeEvent], table: str) -> list[ChangeEvent]:
    return [e for e in events if e.table == table]
