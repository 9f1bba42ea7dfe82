"""``cdc-replicator run`` as a process against the lab, with Postgres, TimescaleDB and ClickHouse:
converges, drains on SIGTERM, survives SIGKILL at random points, keeps going while a Postgres
server is stopped and catches it up, converges when two replicators deliver every event twice in
different orders, and when three nodes' replicators write the same destinations."""

from __future__ import annotations

import asyncio
import random
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cdc_replicator.events import ChangeEvent, Position
from cdc_replicator.schema.registry import SchemaRegistry

from tests.integration.commitlog.helpers import read_events, run, start_position, unique_keyspace
from tests.integration.replicator.process import (
    Proxy,
    Replicator,
    free_port,
    pg_parts,
    read_checkpoint,
    wait_until,
    write_config,
)
from tests.integration.replicator.running import (
    SegmentMirror,
    caught_up,
    clickhouse_destination,
    compare_clickhouse,
    compare_postgres,
    compare_timescale,
    config,
    end_of,
    env,
    http_get,
    position_of,
    postgres_destination,
    setup_keyspace,
    statements,
    timescale_destination,
)

pytestmark = pytest.mark.integration
ALL = ["pg", "ts", "ch"]


def _destinations(home: Path, keyspace: str, pg: dict[str, Any], ts: dict[str, Any], schema: str) -> list[Any]:
    """Postgres, TimescaleDB (both in ``schema``) and a chDB of the process's own under ``home``."""
    return [
        postgres_destination("pg", pg, schema),
        timescale_destination("ts", ts, schema, keyspace),
        clickhouse_destination("ch", home / "chdb", schema),
    ]


def _events(cdc_raws: list[Path], registry: SchemaRegistry, keyspace: str, starts: list[Any]) -> list[ChangeEvent]:
    registry.refresh(force=True)
    out: list[ChangeEvent] = []
    for cdc_raw, start in zip(cdc_raws, starts, strict=True):
        out += read_events(cdc_raw, registry, keyspace, start, include=lambda t: t.cdc)
    return out


def _compare_all(
    session: Any, registry: SchemaRegistry, keyspace: str, pg_dsn: str, ts_dsn: str, schema: str,
    chdb_paths: list[Path], events: list[ChangeEvent],
) -> list[str]:  # fmt: skip
    """Every destination against Cassandra: Postgres and TimescaleDB, and each chDB given."""
    problems = [f"postgres: {p}" for p in compare_postgres(pg_dsn, schema, session, registry, keyspace)]
    problems += [f"timescaledb: {p}" for p in compare_timescale(ts_dsn, schema, session, registry, keyspace, events)]
    for path in chdb_paths:
        problems += [f"clickhouse {path}: {p}" for p in compare_clickhouse(path, schema, session, registry, keyspace)]
    return problems


def test_run_converges_serves_metrics_and_drains_on_sigterm(
    tmp_path: Path, cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str,
    postgres_dsn: str, pg_schema: str, timescaledb_dsn: str,
) -> None:  # fmt: skip
    keyspace = unique_keyspace("repl_run")
    setup_keyspace(cql_session, keyspace, replication)
    start = start_position(cdc_raw)
    for statement in statements(keyspace, 21, 200):
        run(cql_session, statement)
    end = end_of(cdc_raw, registry, keyspace, start)
    pg, ts, port = pg_parts(postgres_dsn), pg_parts(timescaledb_dsn), free_port()
    destinations = _destinations(tmp_path, keyspace, pg, ts, pg_schema)
    replicator = Replicator(
        write_config(tmp_path / "config.yaml", **config(tmp_path, cdc_raw, keyspace, port, destinations)),
        env(pg),
        tmp_path,
    )
    replicator.start()
    try:
        wait_until(lambda: caught_up(tmp_path / "checkpoint.json", end, ALL), 120, "catch-up", replicator.logs)
        status, metrics = http_get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        # Every sample also names its pipeline and node (the chart's alerts and dashboard use them).
        labels = f'destination="pg",node="node1",pipeline="test/run",table="{keyspace}.main"'
        assert f"cdc_events_processed_total{{{labels}}}" in metrics
        for name in ("cdc_replication_lag_seconds", "cdc_backlog_depth", "cdc_raw_bytes", "cdc_segments_pending"):
            assert name in metrics
        assert "cdc_commit_latency_seconds_bucket" in metrics
        status, health = http_get(f"http://127.0.0.1:{port}/health")
        assert status == 200, health
        assert '"pg": {"status": "up"' in health
    finally:
        code = replicator.stop()
    assert code == 0, replicator.logs()
    assert '"message": "stopped"' in replicator.logs()
    events = _events([cdc_raw], registry, keyspace, [start])
    problems = _compare_all(
        cql_session, registry, keyspace, postgres_dsn, timescaledb_dsn, pg_schema, [tmp_path / "chdb"], events
    )
    assert not problems, "\n".join(problems[:30])


@pytest.mark.parametrize("seed", [1, 2])
def test_run_killed_at_random_points_converges(
    tmp_path: Path, cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str,
    postgres_dsn: str, pg_schema: str, timescaledb_dsn: str, seed: int,
) -> None:  # fmt: skip
    """SIGKILL at ten random points per seed while Cassandra is being written, restart each time."""
    keyspace = unique_keyspace(f"repl_kill{seed}")
    setup_keyspace(cql_session, keyspace, replication)
    start = start_position(cdc_raw)
    pg, ts, port = pg_parts(postgres_dsn), pg_parts(timescaledb_dsn), free_port()
    destinations = _destinations(tmp_path, keyspace, pg, ts, pg_schema)
    conf = config(tmp_path, cdc_raw, keyspace, port, destinations, batch_size=25)
    replicator = Replicator(write_config(tmp_path / "config.yaml", **conf), env(pg), tmp_path)
    r = random.Random(seed)
    work = statements(keyspace, seed, 240)

    def write() -> None:
        for statement in work:
            run(cql_session, statement)
            time.sleep(0.05)

    writer = threading.Thread(target=write)
    writer.start()
    kills = 0
    try:
        while kills < 10:
            replicator.start()
            time.sleep(r.uniform(1.0, 3.0))
            assert replicator.alive(), replicator.logs()
            replicator.kill()
            kills += 1
        writer.join()
        end = end_of(cdc_raw, registry, keyspace, start)
        replicator.start()
        wait_until(lambda: caught_up(tmp_path / "checkpoint.json", end, ALL), 120, "catch-up", replicator.logs)
    finally:
        writer.join()
        if replicator.alive():
            assert replicator.stop() == 0
    assert kills == 10
    events = _events([cdc_raw], registry, keyspace, [start])
    problems = _compare_all(
        cql_session, registry, keyspace, postgres_dsn, timescaledb_dsn, pg_schema, [tmp_path / "chdb"], events
    )
    assert not problems, "\n".join(problems[:30])


def test_postgres_server_stopped_30_s_mid_run_the_others_go_on_and_it_catches_up(
    tmp_path: Path, cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str,
    private_postgres: Any,
) -> None:  # fmt: skip
    """A PostgreSQL server holding the Postgres and the TimescaleDB destinations is shut down for
    30 s while Cassandra is written: ClickHouse keeps up, /health says 503, and once the server is
    back both catch up from their committed offsets; every destination then equals Cassandra."""
    keyspace = unique_keyspace("repl_down")
    setup_keyspace(cql_session, keyspace, replication)
    server = private_postgres("repl-down")
    server.start()
    pg_dsn, ts_dsn = server.create_database("cdc_pg"), server.create_database("cdc_ts", timescaledb=True)
    pg, ts, port, schema = pg_parts(pg_dsn), pg_parts(ts_dsn), free_port(), "cdc"
    conf = config(tmp_path, cdc_raw, keyspace, port, _destinations(tmp_path, keyspace, pg, ts, schema))
    replicator = Replicator(write_config(tmp_path / "config.yaml", **conf), env(pg), tmp_path)
    checkpoint = tmp_path / "checkpoint.json"
    start = start_position(cdc_raw)
    work = statements(keyspace, 31, 300)
    replicator.start()
    try:
        for statement in work[:100]:
            run(cql_session, statement)
        first = end_of(cdc_raw, registry, keyspace, start)
        wait_until(lambda: caught_up(checkpoint, first, ALL), 120, "first catch-up", replicator.logs)

        server.stop()
        stopped = time.monotonic()
        writer = threading.Thread(target=lambda: [(run(cql_session, s), time.sleep(0.05)) for s in work[100:]])
        writer.start()
        try:
            wait_until(lambda: http_get(f"http://127.0.0.1:{port}/health")[0] == 503, 30, "/health 503")
        finally:
            writer.join()
        second = end_of(cdc_raw, registry, keyspace, first)
        wait_until(lambda: caught_up(checkpoint, second, ["ch"]), 120, "clickhouse going on", replicator.logs)
        for name in ("pg", "ts"):
            behind = position_of(checkpoint, name)
            assert behind is not None
            assert behind < second, f"{name} moved on while its server was down"
        time.sleep(max(0.0, 30 - (time.monotonic() - stopped)))  # the outage lasts 30 s
        status, health = http_get(f"http://127.0.0.1:{port}/health")
        assert status == 503, health
        assert '"pg": {"status": "down"' in health
        assert '"ts": {"status": "down"' in health
        assert '"ch": {"status": "up"' in health

        server.start()
        wait_until(lambda: caught_up(checkpoint, second, ALL), 180, "postgres catching up", replicator.logs)
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/health")[0] == 200, 30, "/health back to 200")
    finally:
        code = replicator.stop()
    assert code == 0, replicator.logs()
    events = _events([cdc_raw], registry, keyspace, [start])
    problems = _compare_all(cql_session, registry, keyspace, pg_dsn, ts_dsn, schema, [tmp_path / "chdb"], events)
    assert not problems, "\n".join(problems[:30])


def test_two_replicators_on_copies_of_the_segments_deliver_everything_twice_and_converge(
    tmp_path: Path, cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str,
    postgres_dsn: str, pg_schema: str, timescaledb_dsn: str,
) -> None:  # fmt: skip
    """Two processes, each following its own copy of node 1's segments (idx files included), both
    writing the same Postgres and TimescaleDB tables: every event arrives twice, and in different
    orders. "a" (batches of 7) starts alone and commits the first third; then "b" (batches of 400)
    starts from the beginning, so its first batches replay old changes over newer ones (that much
    is certain); during the rest, b's copy is refreshed four times as often as a's, so b tends to
    run ahead and a's deliveries then arrive older than what b already wrote (likely, not
    asserted). Each process keeps its own chDB (one process per data path); each converges too."""
    keyspace = unique_keyspace("repl_twice")
    setup_keyspace(cql_session, keyspace, replication)
    start = start_position(cdc_raw)
    pg, ts = pg_parts(postgres_dsn), pg_parts(timescaledb_dsn)
    homes = {name: tmp_path / name for name in ("a", "b")}
    mirrors, replicators = {}, {}
    for (name, home), batch_size in zip(homes.items(), (7, 400), strict=True):
        mirrors[name] = SegmentMirror(cdc_raw, home / "cdc_raw", 0 if start is None else start.segment_id)
        conf = config(
            home, home / "cdc_raw", keyspace, free_port(), _destinations(home, keyspace, pg, ts, pg_schema),
            batch_size=batch_size, node=f"node1-{name}",
        )  # fmt: skip  # each copy is read as a node of its own: offsets are per node, and b must start from scratch
        replicators[name] = Replicator(write_config(home / "config.yaml", **conf), env(pg), home)
    work = statements(keyspace, 51, 240)
    try:
        for statement in work[:80]:
            run(cql_session, statement)
        mirrors["a"].sync()
        replicators["a"].start()
        first = end_of(cdc_raw, registry, keyspace, start)
        wait_until(lambda: caught_up(homes["a"] / "checkpoint.json", first, ALL), 120, "a", replicators["a"].logs)

        mirrors["b"].sync()
        replicators["b"].start()
        for n, statement in enumerate(work[80:]):
            run(cql_session, statement)
            if n % 10 == 9:
                mirrors["b"].sync()
            if n % 40 == 39:
                mirrors["a"].sync()
        end = end_of(cdc_raw, registry, keyspace, start)
        for name in ("b", "a"):
            mirrors[name].sync()
            wait_until(
                lambda n=name: caught_up(homes[n] / "checkpoint.json", end, ALL), 180, name, replicators[name].logs
            )
        reports = {name: read_checkpoint(home / "checkpoint.json") for name, home in homes.items()}
    finally:
        codes = [r.stop() for r in replicators.values() if r.alive()]
    assert codes == [0, 0]
    events = _events([cdc_raw], registry, keyspace, [start])
    for name, report in reports.items():
        assert report is not None
        delivered = {d["name"]: d["eventsTotal"] for d in report["destinations"]}
        # At least: events that touched only a column dropped later exist only for a reader that
        # decoded them before it knew of the DROP (the test decodes after).
        assert delivered["pg"] >= len(events), f"{name} delivered {delivered['pg']} of {len(events)} events"
    chdbs = [home / "chdb" for home in homes.values()]
    problems = _compare_all(cql_session, registry, keyspace, postgres_dsn, timescaledb_dsn, pg_schema, chdbs, events)
    assert not problems, "\n".join(problems[:30])


@pytest.mark.multinode
def test_three_nodes_three_replicators_shared_destinations_converge(
    tmp_path: Path, cql_session: Any, registry: SchemaRegistry, cassandra_cluster: list[dict[str, Any]],
    postgres_dsn: str, pg_schema: str, timescaledb_dsn: str,
) -> None:  # fmt: skip
    """Replication factor 3: every change reaches Postgres and TimescaleDB three times, from three
    nodes, in no agreed order, through three replicators merging into the same tables. chDB is one
    process's, so each replicator has its own ClickHouse, and each of those converges alone (every
    node holds every partition)."""
    nodes = cassandra_cluster[:3]
    assert len(nodes) == 3
    keyspace = unique_keyspace("repl_three")
    setup_keyspace(cql_session, keyspace, "{'class': 'SimpleStrategy', 'replication_factor': 3}")
    cdc_raws = [Path(node["cdc_raw"]) for node in nodes]
    starts = [start_position(path) for path in cdc_raws]
    pg, ts = pg_parts(postgres_dsn), pg_parts(timescaledb_dsn)
    replicators = []
    for node in nodes:
        home = tmp_path / node["name"]
        home.mkdir()
        conf = config(
            home, Path(node["cdc_raw"]), keyspace, free_port(), _destinations(home, keyspace, pg, ts, pg_schema),
            node=node["name"], contact_point=f"{node['address']}:{node['cql_port']}",
        )  # fmt: skip
        replicators.append(Replicator(write_config(home / "config.yaml", **conf), env(pg), home))
    for replicator in replicators:
        replicator.start()
    try:
        for statement in statements(keyspace, 41, 200):
            run(cql_session, statement)
        for node, cdc_raw, start, replicator in zip(nodes, cdc_raws, starts, replicators, strict=True):
            end = end_of(cdc_raw, registry, keyspace, start)
            ckpt = tmp_path / node["name"] / "checkpoint.json"
            wait_until(lambda c=ckpt, e=end: caught_up(c, e, ALL), 180, f"{node['name']}", replicator.logs)
    finally:
        codes = [r.stop() for r in replicators]
    assert codes == [0, 0, 0]
    events = _events(cdc_raws, registry, keyspace, starts)
    chdbs = [tmp_path / node["name"] / "chdb" for node in nodes]
    problems = _compare_all(cql_session, registry, keyspace, postgres_dsn, timescaledb_dsn, pg_schema, chdbs, events)
    assert not problems, "\n".join(problems[:30])


def _finished_segments(session: Any, replication: str, cdc_raw: Path, count: int) -> list[Any]:
    """The newest ``count`` segments whose idx says COMPLETED, writing filler until there are that many.

    A fresh lab has none: a segment completes only once full (32 MiB), at the next sync.
    """
    from cassandra.concurrent import execute_concurrent_with_args
    from cdc_replicator.commitlog.cdc_dir import list_segments

    def finished() -> list[Any]:
        return [s for s in list_segments(cdc_raw) if (state := s.idx_state()) is not None and state.completed]

    if len(finished()) < count:
        keyspace = unique_keyspace("repl_filler")
        run(session, f"CREATE KEYSPACE {keyspace} WITH replication = {replication}")
        run(session, f"CREATE TABLE {keyspace}.filler (id int PRIMARY KEY, body text) WITH cdc = true")
        insert = session.prepare(f"INSERT INTO {keyspace}.filler (id, body) VALUES (?, ?)")
        body = "f" * 256 * 1024
        written = 0
        # Enough to fill `count` segments from wherever the live one stands, plus one to spare.
        while written < (count + 1) * 32 * 1024 * 1024 and len(finished()) < count:
            execute_concurrent_with_args(session, insert, [(written + i, body) for i in range(40)], concurrency=8)
            written += 40 * len(body)
        wait_until(lambda: len(finished()) >= count, 60, f"{count} finished segments in {cdc_raw}")
    return finished()[-count:]


def test_segments_released_only_once_every_destination_is_past_them(
    tmp_path: Path, cassandra_node: dict[str, Any], cql_session: Any, replication: str, postgres_dsn: str,
    pg_schema: str,
) -> None:  # fmt: skip
    """On a copy of two finished segments: one destination unreachable at start holds them back
    (and /health says so); once it is reachable and caught up, both segments are deleted."""
    source = Path(cassandra_node["cdc_raw"])
    finished = _finished_segments(cql_session, replication, source, 2)
    assert len(finished) == 2
    copy = tmp_path / "cdc_raw"
    copy.mkdir()
    for segment in finished:
        shutil.copyfile(segment.log, copy / segment.log.name)
        shutil.copyfile(segment.idx, copy / segment.idx.name)
    pg = pg_parts(postgres_dsn)
    host, _, pg_port = pg["endpoint"].rpartition(":")
    proxy = Proxy((host, int(pg_port)))  # not started: connections are refused
    port = free_port()
    on_time = postgres_destination("pg", pg, pg_schema)
    late = {**on_time, "name": "pg-late", "endpoint": f"127.0.0.1:{proxy.port}"}
    conf = config(tmp_path, copy, "no_such_keyspace", port, [on_time, late], delete=True)
    replicator = Replicator(write_config(tmp_path / "config.yaml", **conf), env(pg), tmp_path)
    past = Position(finished[-1].segment_id + 1, 0)
    ckpt = tmp_path / "checkpoint.json"
    replicator.start()
    try:
        wait_until(lambda: caught_up(ckpt, past, ["pg"]), 120, "pg past both segments", replicator.logs)
        report = read_checkpoint(ckpt)
        assert report is not None
        late_progress = next(d for d in report["destinations"] if d["name"] == "pg-late")
        assert late_progress["position"] is None
        assert late_progress["lastError"]
        status, health = http_get(f"http://127.0.0.1:{port}/health")
        assert status == 503
        assert '"pg-late": {"status": "down"' in health
        time.sleep(2)  # a few release rounds
        assert sorted(p.name for p in copy.iterdir()) == sorted(
            [s.log.name for s in finished] + [s.idx.name for s in finished]
        )
        proxy.start()
        wait_until(lambda: caught_up(ckpt, past, ["pg", "pg-late"]), 120, "pg-late catching up", replicator.logs)
        wait_until(lambda: not any(copy.iterdir()), 30, "segments released", replicator.logs)
    finally:
        proxy.cut()
        code = replicator.stop()
    assert code == 0


def test_masking_happens_before_any_destination(
    tmp_path: Path, cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str,
    postgres_dsn: str, pg_schema: str,
) -> None:  # fmt: skip
    """A policy in the config: hmac tokens and redaction land in Postgres, raw values nowhere."""
    import base64

    from cdc_replicator.contract.policy import DEFAULT_MARKER
    from cdc_replicator.cql.types import CqlType
    from cdc_replicator.masking.actions import KeyMaterial, encoder_for, hmac_fn

    keyspace = unique_keyspace("repl_mask")
    run(cql_session, f"CREATE KEYSPACE {keyspace} WITH replication = {replication}")
    run(
        cql_session,
        f"CREATE TABLE {keyspace}.people (id int PRIMARY KEY, email text, ssn text, age int) WITH cdc = true",
    )
    start = start_position(cdc_raw)
    for n in range(5):
        run(
            cql_session,
            f"INSERT INTO {keyspace}.people (id, email, ssn, age) VALUES ({n}, 'p{n}@x.org', 'ssn-{n}', {n})",
        )
    # A masked clustering column: equality deletes still apply; a range over it cannot (hashes keep no order).
    run(
        cql_session, f"CREATE TABLE {keyspace}.log (id int, email text, n int, PRIMARY KEY (id, email)) WITH cdc = true"
    )
    for n in range(3):
        run(cql_session, f"INSERT INTO {keyspace}.log (id, email, n) VALUES (1, 'l{n}@x.org', {n})")
    run(cql_session, f"DELETE FROM {keyspace}.log WHERE id = 1 AND email = 'l0@x.org'")
    run(cql_session, f"DELETE FROM {keyspace}.log WHERE id = 1 AND email > 'l1'")
    end = end_of(cdc_raw, registry, keyspace, start)
    key = bytes(range(32))
    pg, port = pg_parts(postgres_dsn), free_port()
    conf = config(tmp_path, cdc_raw, keyspace, port, [postgres_destination("pg", pg, pg_schema)])
    conf["masking"] = {
        "policies": [
            {
                "name": "people",
                "rules": [
                    {"name": "email", "classification": "PII", "match": {"column": "email"}, "action": "hmac",
                     "keyRef": "tokens"},
                    {"name": "ssn", "classification": "PII", "match": {"column": "ssn"}, "action": "redact"},
                ],
            }
        ],
        "keys": [{"name": "tokens", "env": "MASK_TOKENS"}],
    }  # fmt: skip
    environ = {**env(pg), "MASK_TOKENS": base64.b64encode(key).decode(), "MASK_TOKENS_VERSION": "3"}
    replicator = Replicator(write_config(tmp_path / "config.yaml", **conf), environ, tmp_path)
    replicator.start()
    try:
        ckpt = tmp_path / "checkpoint.json"
        wait_until(lambda: caught_up(ckpt, end, ["pg"]), 120, "catch-up", replicator.logs)
    finally:
        assert replicator.stop() == 0

    async def read() -> tuple[list[Any], str, list[Any], list[Any]]:
        conn = await asyncpg.connect(postgres_dsn)
        try:
            log_rows = await conn.fetch(f'SELECT email, n FROM "{pg_schema}"."{keyspace}_log" ORDER BY n')
            dead = await conn.fetch(f'SELECT "table", error, event::text AS event FROM "{pg_schema}".cdc_dead_letters')
            rows = await conn.fetch(f'SELECT id, email, ssn, age FROM "{pg_schema}"."{keyspace}_people" ORDER BY id')
            raw = await conn.fetchval(
                f'SELECT string_agg(t::text, \'|\') FROM "{pg_schema}"."{keyspace}_people__rows" t'
            )
        finally:
            await conn.close()
        return rows, str(raw), log_rows, dead

    rows, raw, log_rows, dead = asyncio.run(read())
    token = hmac_fn(KeyMaterial(3, key), encoder_for(CqlType("text")))
    assert [(r["id"], r["email"], r["ssn"], r["age"]) for r in rows] == [
        (n, token(f"p{n}@x.org"), DEFAULT_MARKER, n) for n in range(5)
    ]
    assert "@x.org" not in raw
    assert "ssn-" not in raw
    assert [(r["email"], r["n"]) for r in log_rows] == [(token("l1@x.org"), 1), (token("l2@x.org"), 2)]
    assert [(d["table"], "masked clustering column" in d["error"]) for d in dead] == [("log", True)]
    assert "@x.org" not in dead[0]["event"]


def test_cassandra_unreachable_at_start_is_retried_and_reported(tmp_path: Path) -> None:
    port = free_port()
    conf = {
        "pipeline": "test/run",
        "source": {"nodeName": "n1", "cdcRawPath": str(tmp_path), "contactPoints": ["127.0.0.1:1"], "keyspaces": ["k"]},
        "destinations": [
            {"name": "ch", "type": "clickhouse", "endpoint": f"chdb://{tmp_path / 'chdb'}", "database": "k"}
        ],
        "checkpoint": {"path": str(tmp_path / "checkpoint.json")},
        "tuning": {"retryInitialSeconds": 0.2, "retryMaxSeconds": 1.0},
        "observability": {"metricsPort": port},
    }
    replicator = Replicator(write_config(tmp_path / "config.yaml", **conf), {}, tmp_path)
    replicator.start()
    try:
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/health")[0] == 503, 30, "/health 503", replicator.logs)
        assert '"cassandra": {"status": "down"' in http_get(f"http://127.0.0.1:{port}/health")[1]
        wait_until(lambda: replicator.logs().count("cannot reach Cassandra") >= 2, 30, "retries", replicator.logs)
    finally:
        code = replicator.stop()
    assert code == 0
