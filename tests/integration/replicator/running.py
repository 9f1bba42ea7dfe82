"""What the ``cdc-replicator run`` tests share: a keyspace and workload that exercise every
destination (including a time-series table TimescaleDB keeps as current state), config files,
"caught up" checks, and the comparison of each destination with Cassandra's ``SELECT *``."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
from cdc_replicator.commitlog.cdc_dir import list_segments
from cdc_replicator.events import ChangeEvent, Position
from cdc_replicator.schema.model import TableSchema
from cdc_replicator.schema.registry import SchemaRegistry
from cdc_replicator.sinks.history import history_row
from cdc_replicator.sinks.layout import default_target

from e2e.lab.layout import Layout
from tests.integration.commitlog.helpers import read_events, run
from tests.integration.commitlog.model import select_all
from tests.integration.commitlog.workload import Workload, schema_statements
from tests.integration.replicator.helpers import ch_expected, ch_read, diff, expected_rows, view_rows
from tests.integration.replicator.process import chdb_records, positions, read_checkpoint

TIME_SERIES = "metrics"
"""The table TimescaleDB keeps as current state (its key holds the timestamp ``at``); the
workload's other tables have none, so TimescaleDB keeps their change history."""
CREDENTIALS = {"usernameEnv": "PG_USER", "passwordEnv": "PG_PASSWORD"}
RETENTION = "retention"
UUIDS = "uuids"
_GREGORIAN = 0x01B21DD213814000  # 100 ns ticks from 1582-10-15 to the epoch


# -- Cassandra side ----------------------------------------------------------------------------


def setup_keyspace(session: Any, keyspace: str, replication: str) -> None:
    run(session, f"CREATE KEYSPACE {keyspace} WITH replication = {replication}")
    for statement in schema_statements(keyspace):
        run(session, statement)
    run(
        session,
        f"CREATE TABLE {keyspace}.{TIME_SERIES} (device int, at timestamp, v double, note text, tags set<text>, "
        "PRIMARY KEY (device, at)) WITH cdc = true",
    )
    # Orders SQL gets wrong unless told Cassandra's (issue 11): a DESC timeuuid cut by retention
    # windows, a uuid cut by slices, and equal-timestamp writes of negative and positive numbers.
    run(
        session,
        f"CREATE TABLE {keyspace}.{RETENTION} (pk int, ts timeuuid, v text, n bigint, d double, "
        "PRIMARY KEY (pk, ts)) WITH cdc = true AND CLUSTERING ORDER BY (ts DESC)",
    )
    run(session, f"CREATE TABLE {keyspace}.{UUIDS} (pk int, ck uuid, v int, PRIMARY KEY (pk, ck)) WITH cdc = true")


def time_series_statements(keyspace: str, r: random.Random) -> Iterator[str]:
    """Upserts (some with a TTL far beyond any test), cell and row deletions, range and partition
    deletions on the time-series table, with increasing write timestamps."""
    ts = int(time.time() * 1_000_000)
    base_ms = 1_700_000_000_000
    table = f"{keyspace}.{TIME_SERIES}"
    while True:
        ts += 10
        device, at = r.randint(0, 3), base_ms + r.randint(0, 20) * 60_000
        where = f"WHERE device = {device} AND at = {at}"
        choice = r.random()
        if choice < 0.5:
            ttl = f" AND TTL {r.randint(3600, 7200)}" if r.random() < 0.1 else ""
            yield (
                f"INSERT INTO {table} (device, at, v, tags) VALUES ({device}, {at}, {r.randint(-99, 99) / 4}, "
                f"{{'t{r.randint(0, 3)}'}}) USING TIMESTAMP {ts}{ttl}"
            )
        elif choice < 0.75:
            yield (
                f"UPDATE {table} USING TIMESTAMP {ts} SET tags = tags + {{'u{r.randint(0, 3)}'}}, "
                f"note = 'n{r.randint(0, 9)}' {where}"
            )
        elif choice < 0.85:
            yield f"DELETE FROM {table} USING TIMESTAMP {ts} {where}"
        elif choice < 0.93:
            yield (
                f"DELETE FROM {table} USING TIMESTAMP {ts} WHERE device = {device} AND at >= {at} "
                f"AND at < {at + r.randint(1, 4) * 60_000}"
            )
        elif choice < 0.97:
            yield f"DELETE note FROM {table} USING TIMESTAMP {ts} {where}"
        else:
            yield f"DELETE FROM {table} USING TIMESTAMP {ts} WHERE device = {device}"


def _timeuuid(millis: int, r: random.Random) -> str:
    ticks = millis * 10_000 + r.randint(0, 9_999) + _GREGORIAN
    msb = ((ticks & 0xFFFFFFFF) << 32) | (((ticks >> 32) & 0xFFFF) << 16) | 0x1000 | ((ticks >> 48) & 0x0FFF)
    return str(uuid.UUID(int=(msb << 64) | r.getrandbits(64)))


def _day(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(1_672_531_200 + day * 86_400))  # from 2023-01-01


def order_statements(keyspace: str, r: random.Random) -> Iterator[str]:
    """Rows of a DESC timeuuid table spread over three years, cut by retention windows
    (``ts >= minTimeuuid(?) AND ts < maxTimeuuid(?)`` and the other bound kinds); uuid rows cut by
    ``ck > ? AND ck <= ?``; and pairs of writes sharing one ``USING TIMESTAMP`` with different
    values (Cassandra keeps the greater serialized value: -7 beats 5, -1.5 beats 2.0)."""
    ts = int(time.time() * 1_000_000) + 5_000_000
    retention, uuids = f"{keyspace}.{RETENTION}", f"{keyspace}.{UUIDS}"
    known: list[str] = []
    while True:
        ts += 10
        pk = r.randint(0, 2)
        choice = r.random()
        if choice < 0.4:
            day = r.randint(0, 3 * 365)
            stamp = _timeuuid(1_672_531_200_000 + day * 86_400_000 + r.randint(0, 86_399_999), r)
            yield (
                f"INSERT INTO {retention} (pk, ts, v, n, d) VALUES ({pk}, {stamp}, 'd{day}', {r.randint(-9, 9)}, "
                f"{r.randint(-99, 99) / 4}) USING TIMESTAMP {ts}"
            )
        elif choice < 0.5:
            low = r.randint(0, 3 * 365)
            high = low + r.randint(0, 200)
            start = r.choice([">= minTimeuuid", "> maxTimeuuid", ">= maxTimeuuid"])
            end = r.choice(["< maxTimeuuid", "< minTimeuuid", "<= maxTimeuuid"])
            op_start, fn_start = start.split(" ")
            op_end, fn_end = end.split(" ")
            yield (
                f"DELETE FROM {retention} USING TIMESTAMP {ts} WHERE pk = {pk} AND ts {op_start} "
                f"{fn_start}('{_day(low)}') AND ts {op_end} {fn_end}('{_day(high)}')"
            )
        elif choice < 0.7:
            ck = str(uuid.UUID(int=r.getrandbits(128))) if r.random() < 0.5 else _timeuuid(r.randint(0, 2**40), r)
            known.append(ck)
            yield f"INSERT INTO {uuids} (pk, ck, v) VALUES ({pk}, {ck}, {r.randint(-9, 9)}) USING TIMESTAMP {ts}"
        elif choice < 0.8 and len(known) > 1:
            low, high = r.choice(known), r.choice(known)
            yield f"DELETE FROM {uuids} USING TIMESTAMP {ts} WHERE pk = {pk} AND ck > {low} AND ck <= {high}"
        else:
            # Two writes at one timestamp: which value stays is Cassandra's tie-break alone. On the
            # time-series table, which every destination (TimescaleDB too) keeps as current state.
            where = f"WHERE device = {r.randint(0, 3)} AND at = {1_700_000_000_000 + r.randint(0, 20) * 60_000}"
            for value in (r.randint(-99, 99) / 4, r.randint(-99, 99) / 4):
                yield f"UPDATE {keyspace}.{TIME_SERIES} USING TIMESTAMP {ts} SET v = {value} {where}"


def statements(keyspace: str, seed: int, steps: int) -> list[str]:
    """The differential workload (every type, ALTER ADD/DROP half-way), one time-series
    statement after every third of its statements, one of ``order_statements`` after every
    other third."""
    r = random.Random(seed * 7919)
    series = time_series_statements(keyspace, r)
    orders = order_statements(keyspace, random.Random(seed * 104729))
    out: list[str] = []
    for n, statement in enumerate(Workload(keyspace, seed, steps, alter_at=steps // 2).statements()):
        out.append(statement)
        if n % 3 == 2:
            out.append(next(series))
        if n % 3 == 1:
            out.append(next(orders))
    return out


def end_of(cdc_raw: Path, registry: SchemaRegistry, keyspace: str, after: Position | None) -> Position:
    """Where the last event of ``keyspace`` ends in ``cdc_raw`` (other tests write there too, so the
    end of the segment may be a foreign entry a replicator never reports as its position)."""
    registry.refresh(force=True)
    events = read_events(cdc_raw, registry, keyspace, after, include=lambda t: t.cdc)
    assert events
    return max(e.position for e in events)


# -- config and progress ---------------------------------------------------------------------


def postgres_destination(name: str, dsn_parts: dict[str, Any], schema: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "postgres",
        "endpoint": dsn_parts["endpoint"],
        "database": dsn_parts["database"],
        "targetSchema": schema,
        "credentials": CREDENTIALS,
    }


def timescale_destination(name: str, dsn_parts: dict[str, Any], schema: str, keyspace: str) -> dict[str, Any]:
    return {
        **postgres_destination(name, dsn_parts, schema),
        "type": "timescaledb",
        "tables": [{"table": f"{keyspace}.{TIME_SERIES}", "timeColumn": "at", "chunkInterval": "1 hour"}],
    }


def clickhouse_destination(name: str, path: Path, database: str) -> dict[str, Any]:
    return {"name": name, "type": "clickhouse", "endpoint": f"chdb://{path}", "database": database}


def config(
    home: Path,
    cdc_raw: Path,
    keyspace: str,
    port: int,
    destinations: list[dict[str, Any]],
    *,
    batch_size: int = 500,
    delete: bool = False,
    node: str = "node1",
    contact_point: str | None = None,
) -> dict[str, Any]:
    """A replicator config (as the operator renders it) with short waits and retries, for tests."""
    return {
        "pipeline": "test/run",
        "source": {
            "nodeName": node,
            "cdcRawPath": str(cdc_raw),
            "contactPoints": [contact_point or f"127.0.0.1:{Layout.default().ports.cassandra_cql}"],
            "keyspaces": [keyspace],
            "deleteConsumedSegments": delete,
        },
        "destinations": destinations,
        "checkpoint": {"path": str(home / "checkpoint.json"), "intervalSeconds": 0.5},
        "tuning": {
            "batchSize": batch_size,
            "batchMaxWaitSeconds": 0.2,
            "pollIntervalSeconds": 0.2,
            "retryInitialSeconds": 0.2,
            "retryMaxSeconds": 2.0,
        },
        "observability": {"metricsPort": port},
    }


def env(dsn_parts: dict[str, Any]) -> dict[str, str]:
    return {"PG_USER": dsn_parts["user"], "PG_PASSWORD": dsn_parts["password"]}


def caught_up(checkpoint_path: Path, end: Position, names: list[str]) -> bool:
    found = positions(read_checkpoint(checkpoint_path))
    return all(found.get(n) is not None and Position.parse(str(found[n])) >= end for n in names)


def position_of(checkpoint_path: Path, name: str) -> Position | None:
    found = positions(read_checkpoint(checkpoint_path)).get(name)
    return None if found is None else Position.parse(found)


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError):
        return 0, ""  # not listening (yet)


# -- comparing each destination with Cassandra ---------------------------------------------------


def _tables(registry: SchemaRegistry, keyspace: str) -> list[TableSchema]:
    registry.refresh(force=True)
    return [t for t in registry.tables() if t.keyspace == keyspace and t.cdc]


def compare_postgres(dsn: str, schema: str, session: Any, registry: SchemaRegistry, keyspace: str) -> list[str]:
    """Differences between each table's current-state view and ``SELECT *`` (empty when equal)."""
    tables = _tables(registry, keyspace)

    async def go() -> list[str]:
        conn = await asyncpg.connect(dsn)
        try:
            problems = []
            for table in tables:
                expected = expected_rows(table, select_all(session, table))
                problems += diff(table.name, expected, await view_rows(conn, schema, table))
            return problems
        finally:
            await conn.close()

    return asyncio.run(go())


def compare_clickhouse(path: Path, database: str, session: Any, registry: SchemaRegistry, keyspace: str) -> list[str]:
    problems = []
    for table in _tables(registry, keyspace):
        keys = list(table.partition_key + table.clustering)
        columns = {name.decode(): c for name, c in table.columns.items() if c.current}
        actual = {}
        for record in chdb_records(path, database, default_target(keyspace, table.name)):
            key = tuple(ch_read(record[k.name], k.type) for k in keys)
            actual[key] = {name: ch_read(record[name], c.type) for name, c in columns.items()}
        problems += diff(table.name, ch_expected(table, select_all(session, table)), actual)
    return problems


def compare_timescale(
    dsn: str, schema: str, session: Any, registry: SchemaRegistry, keyspace: str, events: list[ChangeEvent]
) -> list[str]:
    """The time-series hypertable against ``SELECT *``; every other table's change history against
    the events Cassandra wrote to cdc_raw (``events``): exactly one history row per distinct change
    (key, write time, operation), holding that change, whatever the number of deliveries.

    Cells of columns dropped since are left out on both sides: whether a change still shows them
    depends on whether the decoding replicator knew of the DROP yet (the decoder applies Cassandra's
    rule that a drop hides older cells), and the test decodes after everything."""
    tables = _tables(registry, keyspace)

    async def go() -> list[str]:
        conn = await asyncpg.connect(dsn)
        try:
            problems = []
            for table in tables:
                if table.name == TIME_SERIES:
                    expected_state = expected_rows(table, select_all(session, table))
                    problems += diff(table.name, expected_state, await view_rows(conn, schema, table))
                    continue
                dropped = {name.decode() for name, c in table.columns.items() if not c.current}
                expected: dict[tuple[str, int, str], Any] = {}
                for event in (e for e in events if e.table == table.name):
                    row = history_row(event)
                    expected[_normal(row[2]), row[1], row[3]] = _without(json.loads(row[4]), dropped)
                found = await conn.fetch(
                    f'SELECT _ts, _key::text AS key, _op, _change::text AS change FROM "{schema}".'
                    f'"{default_target(keyspace, table.name)}__history"'
                )
                actual: dict[tuple[str, int, str], Any] = {}
                for record in found:
                    ident = (_normal(record["key"]), record["_ts"], record["_op"])
                    if ident in actual:
                        problems.append(f"{table.name}: change {ident} twice in the history")
                    actual[ident] = _without(json.loads(record["change"]), dropped)
                problems += [f"{table.name}: missing change {i}" for i in expected.keys() - actual.keys()]
                problems += [f"{table.name}: extra change {i}" for i in actual.keys() - expected.keys() if actual[i]]
                problems += [
                    f"{table.name}: change {i} is {actual[i]}, expected {expected[i]}"
                    for i in expected.keys() & actual.keys()
                    if actual[i] != expected[i]
                ]
            return problems
        finally:
            await conn.close()

    return asyncio.run(go())


def _normal(key_json: str) -> str:
    return json.dumps(json.loads(key_json), sort_keys=True)


def _without(change: dict[str, Any], columns: set[str]) -> dict[str, Any]:
    """``change`` without the cells of ``columns``, and without parts left empty (a change that
    touched only those columns becomes empty: decoded after the DROP, it is no change at all)."""
    for part in ("cells", "collections"):
        kept = {k: v for k, v in change.get(part, {}).items() if k not in columns}
        if kept:
            change[part] = kept
        else:
            change.pop(part, None)
    return change


# -- copies of a node's cdc_raw ----------------------------------------------------------------


class SegmentMirror:
    """Keeps a private copy of a node's ``cdc_raw`` from one segment on, as Cassandra would write it:
    each ``sync()`` copies the idx first, then the segment (so the copy holds at least what the idx
    says is durable), each through a temporary file and a rename, so a reader never sees half a copy.
    A segment is copied again on every sync until its copied idx says COMPLETED (Cassandra writes
    segments through a memory map: neither their size nor their mtime says when they changed)."""

    def __init__(self, source: Path, target: Path, first_segment: int) -> None:
        self.source = source
        self.target = target
        self.first_segment = first_segment
        self._finished: set[int] = set()
        target.mkdir(parents=True, exist_ok=True)

    def sync(self) -> None:
        for segment in list_segments(self.source):
            if segment.segment_id < self.first_segment or segment.segment_id in self._finished:
                continue
            try:
                state = segment.idx_state()
                for path in (segment.idx, segment.log):
                    if path.exists():
                        partial = self.target / f".{path.name}.partial"
                        shutil.copyfile(path, partial)
                        partial.replace(self.target / path.name)
            except FileNotFoundError:
                continue
            if state is not None and state.completed:
                self._finished.add(segment.segment_id)
