"""``cdc-replicator run`` as a process against the lab: converges, drains on SIGTERM, survives SIGKILL
at random points, keeps going when one destination is cut off and catches it up afterwards."""

from __future__ import annotations

import asyncio
import random
import shutil
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cdc_replicator.events import Position
from cdc_replicator.schema.registry import SchemaRegistry
from cdc_replicator.sinks.layout import default_target

from e2e.lab.layout import Layout
from tests.integration.commitlog.helpers import read_events, run, start_position, unique_keyspace
from tests.integration.commitlog.model import select_all
from tests.integration.commitlog.workload import Workload, schema_statements
from tests.integration.replicator.helpers import ch_expected, ch_read, diff, expected_rows, view_rows
from tests.integration.replicator.process import (
    Proxy,
    Replicator,
    chdb_records,
    free_port,
    pg_parts,
    positions,
    read_checkpoint,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.integration


def _config(
    tmp: Path, cdc_raw: Path, keyspace: str, pg: dict[str, Any], schema: str, port: int, **extra: Any
) -> dict[str, Any]:
    destinations = extra.pop(
        "destinations",
        [
            {
                "name": "pg",
                "type": "postgres",
                "endpoint": pg["endpoint"],
                "database": pg["database"],
                "targetSchema": schema,
                "credentials": {"usernameEnv": "PG_USER", "passwordEnv": "PG_PASSWORD"},
            },
            {"name": "ch", "type": "clickhouse", "endpoint": f"chdb://{tmp / 'chdb'}", "database": schema},
        ],
    )
    return {
        "pipeline": "test/run",
        "source": {
            "nodeName": "node1",
            "cdcRawPath": str(cdc_raw),
            "contactPoints": [f"127.0.0.1:{Layout.default().ports.cassandra_cql}"],
            "keyspaces": [keyspace],
            "deleteConsumedSegments": extra.pop("delete", False),
        },
        "destinations": destinations,
        "checkpoint": {"path": str(tmp / "checkpoint.json"), "intervalSeconds": 0.5},
        "tuning": {
            "batchSize": extra.pop("batch_size", 500),
            "batchMaxWaitSeconds": 0.2,
            "pollIntervalSeconds": 0.2,
            "retryInitialSeconds": 0.2,
            "retryMaxSeconds": 2.0,
        },
        "observability": {"metricsPort": port},
    }


def _env(pg: dict[str, Any]) -> dict[str, str]:
    return {"PG_USER": pg["user"], "PG_PASSWORD": pg["password"]}


def _setup(session: Any, keyspace: str, replication: str) -> None:
    run(session, f"CREATE KEYSPACE {keyspace} WITH replication = {replication}")
    for statement in schema_statements(keyspace):
        run(session, statement)


def _caught_up(checkpoint_path: Path, end: Position, names: list[str]) -> bool:
    found = positions(read_checkpoint(checkpoint_path))
    return all(found.get(n) is not None and Position.parse(str(found[n])) >= end for n in names)


def _end(cdc_raw: Path, registry: SchemaRegistry, keyspace: str, after: Position | None) -> Position:
    """Where the last event of ``keyspace`` ends in ``cdc_raw`` (other tests write there too, so the
    end of the segment may be a foreign entry a replicator never reports as its position)."""
    registry.refresh(force=True)
    events = read_events(cdc_raw, registry, keyspace, after, include=lambda t: t.cdc)
    assert events
    return max(e.position for e in events)


def _compare_pg(dsn: str, schema: str, session: Any, registry: SchemaRegistry, keyspace: str) -> list[str]:
    registry.refresh(force=True)
    tables = [t for t in registry.tables() if t.keyspace == keyspace and t.cdc]

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


def _compare_ch(path: Path, database: str, session: Any, registry: SchemaRegistry, keyspace: str) -> list[str]:
    problems = []
    for table in [t for t in registry.tables() if t.keyspace == keyspace and t.cdc]:
        keys = list(table.partition_key + table.clustering)
        columns = {name.decode(): c for name, c in table.columns.items() if c.current}
        actual = {}
        for record in chdb_records(path, database, default_target(keyspace, table.name)):
            key = tuple(ch_read(record[k.name], k.type) for k in keys)
            actual[key] = {name: ch_read(record[name], c.type) for name, c in columns.items()}
        problems += diff(table.name, ch_expected(table, select_all(session, table)), actual)
    return problems


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError):
        return 0, ""  # not listening (yet)


def test_run_converges_serves_metrics_and_drains_on_sigterm(
    tmp_path: Path, cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str,
    postgres_dsn: str, pg_schema: str,
) -> None:  # fmt: skip
    keyspace = unique_keyspace("repl_run")
    _setup(cql_session, keyspace, replication)
    start = start_position(cdc_raw)
    for statement in Workload(keyspace, 21, 200, alter_at=100).statements():
        run(cql_session, statement)
    end = _end(cdc_raw, registry, keyspace, start)
    pg, port = pg_parts(postgres_dsn), free_port()
    config = write_config(tmp_path / "config.yaml", **_config(tmp_path, cdc_raw, keyspace, pg, pg_schema, port))
    replicator = Replicator(config, _env(pg), tmp_path)
    replicator.start()
    try:
        wait_until(
            lambda: _caught_up(tmp_path / "checkpoint.json", end, ["pg", "ch"]), 120, "catch-up", replicator.logs
        )
        status, metrics = _get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert f'cdc_events_processed_total{{destination="pg",table="{keyspace}.main"}}' in metrics
        for name in ("cdc_replication_lag_seconds", "cdc_backlog_depth", "cdc_raw_bytes", "cdc_segments_pending"):
            assert name in metrics
        assert "cdc_commit_latency_seconds_bucket" in metrics
        status, health = _get(f"http://127.0.0.1:{port}/health")
        assert status == 200, health
        assert '"pg": {"status": "up"' in health
    finally:
        code = replicator.stop()
    assert code == 0, replicator.logs()
    assert '"message": "stopped"' in replicator.logs()
    problems = _compare_pg(postgres_dsn, pg_schema, cql_session, registry, keyspace)
    problems += _compare_ch(tmp_path / "chdb", pg_schema, cql_session, registry, keyspace)
    assert not problems, "\n".join(problems[:30])


@pytest.mark.parametrize("seed", [1, 2])
def test_run_killed_at_random_points_converges(
    tmp_path: Path, cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str,
    postgres_dsn: str, pg_schema: str, seed: int,
) -> None:  # fmt: skip
    """SIGKILL at ten random points per seed while Cassandra is being written, restart each time."""
    keyspace = unique_keyspace(f"repl_kill{seed}")
    _setup(cql_session, keyspace, replication)
    start = start_position(cdc_raw)
    pg, port = pg_parts(postgres_dsn), free_port()
    config = _config(tmp_path, cdc_raw, keyspace, pg, pg_schema, port, batch_size=25)
    replicator = Replicator(write_config(tmp_path / "config.yaml", **config), _env(pg), tmp_path)
    r = random.Random(seed)
    statements = list(Workload(keyspace, seed, 240, alter_at=120).statements())
    done = threading.Event()

    def write() -> None:
        for statement in statements:
            run(cql_session, statement)
            time.sleep(0.06)
        done.set()

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
        end = _end(cdc_raw, registry, keyspace, start)
        replicator.start()
        wait_until(
            lambda: _caught_up(tmp_path / "checkpoint.json", end, ["pg", "ch"]), 120, "catch-up", replicator.logs
        )
    finally:
        writer.join()
        if replicator.alive():
            assert replicator.stop() == 0
    assert kills == 10
    problems = _compare_pg(postgres_dsn, pg_schema, cql_session, registry, keyspace)
    problems += _compare_ch(tmp_path / "chdb", pg_schema, cql_session, registry, keyspace)
    assert not problems, "\n".join(problems[:30])


def test_destination_cut_off_does_not_stop_the_others_and_catches_up(
    tmp_path: Path, cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str,
    postgres_dsn: str, pg_schema: str,
) -> None:  # fmt: skip
    keyspace = unique_keyspace("repl_cut")
    _setup(cql_session, keyspace, replication)
    start = start_position(cdc_raw)
    pg, port = pg_parts(postgres_dsn), free_port()
    host, _, pg_port = pg["endpoint"].rpartition(":")
    proxy = Proxy((host, int(pg_port)))
    proxy.start()
    config = _config(tmp_path, cdc_raw, keyspace, {**pg, "endpoint": f"127.0.0.1:{proxy.port}"}, pg_schema, port)
    replicator = Replicator(write_config(tmp_path / "config.yaml", **config), _env(pg), tmp_path)
    workload = Workload(keyspace, 31, 240, alter_at=200)
    statements = list(workload.statements())
    checkpoint = tmp_path / "checkpoint.json"
    replicator.start()
    try:
        for statement in statements[:80]:
            run(cql_session, statement)
        first = _end(cdc_raw, registry, keyspace, start)
        wait_until(lambda: _caught_up(checkpoint, first, ["pg", "ch"]), 120, "first catch-up", replicator.logs)

        proxy.cut()
        for statement in statements[80:]:
            run(cql_session, statement)
        second = _end(cdc_raw, registry, keyspace, first)
        wait_until(lambda: _caught_up(checkpoint, second, ["ch"]), 120, "clickhouse going on", replicator.logs)
        report = read_checkpoint(checkpoint)
        assert report is not None
        pg_progress = next(d for d in report["destinations"] if d["name"] == "pg")
        assert Position.parse(pg_progress["position"]) < second
        wait_until(lambda: _get(f"http://127.0.0.1:{port}/health")[0] == 503, 30, "/health to say 503", replicator.logs)
        time.sleep(5)  # the outage lasts: retries back off, nothing else stops

        proxy.start()
        wait_until(lambda: _caught_up(checkpoint, second, ["pg", "ch"]), 120, "postgres catching up", replicator.logs)
        wait_until(lambda: _get(f"http://127.0.0.1:{port}/health")[0] == 200, 30, "/health back to 200")
    finally:
        proxy.cut()
        code = replicator.stop()
    assert code == 0
    problems = _compare_pg(postgres_dsn, pg_schema, cql_session, registry, keyspace)
    problems += _compare_ch(tmp_path / "chdb", pg_schema, cql_session, registry, keyspace)
    assert not problems, "\n".join(problems[:30])


@pytest.mark.multinode
def test_three_nodes_three_replicators_one_destination_converge(
    tmp_path: Path, cql_session: Any, registry: SchemaRegistry, cassandra_cluster: list[dict[str, Any]],
    postgres_dsn: str, pg_schema: str,
) -> None:  # fmt: skip
    """Replication factor 3: every change reaches Postgres three times, from three nodes, in no
    agreed order, through three replicators merging into the same tables."""
    nodes = cassandra_cluster[:3]
    assert len(nodes) == 3
    keyspace = unique_keyspace("repl_three")
    _setup(cql_session, keyspace, "{'class': 'SimpleStrategy', 'replication_factor': 3}")
    starts = {node["name"]: start_position(Path(node["cdc_raw"])) for node in nodes}
    pg = pg_parts(postgres_dsn)
    replicators = []
    for node in nodes:
        home = tmp_path / node["name"]
        home.mkdir()
        config = _config(home, Path(node["cdc_raw"]), keyspace, pg, pg_schema, free_port())
        config["source"]["nodeName"] = node["name"]
        config["source"]["contactPoints"] = [f"{node['address']}:{node['cql_port']}"]
        config["destinations"] = config["destinations"][:1]  # chDB is one process's: Postgres is shared
        replicators.append(Replicator(write_config(home / "config.yaml", **config), _env(pg), home))
    for replicator in replicators:
        replicator.start()
    try:
        for statement in Workload(keyspace, 41, 200, alter_at=100).statements():
            run(cql_session, statement)
        for node, replicator in zip(nodes, replicators, strict=True):
            end = _end(Path(node["cdc_raw"]), registry, keyspace, starts[node["name"]])
            ckpt = tmp_path / node["name"] / "checkpoint.json"
            wait_until(lambda c=ckpt, e=end: _caught_up(c, e, ["pg"]), 180, f"{node['name']}", replicator.logs)
    finally:
        codes = [r.stop() for r in replicators]
    assert codes == [0, 0, 0]
    problems = _compare_pg(postgres_dsn, pg_schema, cql_session, registry, keyspace)
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
    config = _config(tmp_path, copy, "no_such_keyspace", pg, pg_schema, port, delete=True)
    late = {**config["destinations"][0], "name": "pg-late", "endpoint": f"127.0.0.1:{proxy.port}"}
    config["destinations"] = [config["destinations"][0], late]
    replicator = Replicator(write_config(tmp_path / "config.yaml", **config), _env(pg), tmp_path)
    past = Position(finished[-1].segment_id + 1, 0)
    ckpt = tmp_path / "checkpoint.json"
    replicator.start()
    try:
        wait_until(lambda: _caught_up(ckpt, past, ["pg"]), 120, "pg past both segments", replicator.logs)
        report = read_checkpoint(ckpt)
        assert report is not None
        late_progress = next(d for d in report["destinations"] if d["name"] == "pg-late")
        assert late_progress["position"] is None
        assert late_progress["lastError"]
        status, health = _get(f"http://127.0.0.1:{port}/health")
        assert status == 503
        assert '"pg-late": {"status": "down"' in health
        time.sleep(2)  # a few release rounds
        assert sorted(p.name for p in copy.iterdir()) == sorted(
            [s.log.name for s in finished] + [s.idx.name for s in finished]
        )
        proxy.start()
        wait_until(lambda: _caught_up(ckpt, past, ["pg", "pg-late"]), 120, "pg-late catching up", replicator.logs)
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

    from cdc_replicator.masking.actions import KeyMaterial, encoder_for, hmac_fn
    from cdc_replicator.masking.policy import DEFAULT_MARKER
    from cdc_replicator.types.cql import CqlType

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
    end = _end(cdc_raw, registry, keyspace, start)
    key = bytes(range(32))
    pg, port = pg_parts(postgres_dsn), free_port()
    config = _config(tmp_path, cdc_raw, keyspace, pg, pg_schema, port)
    config["destinations"] = config["destinations"][:1]
    config["masking"] = {
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
    env = {**_env(pg), "MASK_TOKENS": base64.b64encode(key).decode(), "MASK_TOKENS_VERSION": "3"}
    replicator = Replicator(write_config(tmp_path / "config.yaml", **config), env, tmp_path)
    replicator.start()
    try:
        ckpt = tmp_path / "checkpoint.json"
        wait_until(lambda: _caught_up(ckpt, end, ["pg"]), 120, "catch-up", replicator.logs)
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
    config = {
        "pipeline": "test/run",
        "source": {"nodeName": "n1", "cdcRawPath": str(tmp_path), "contactPoints": ["127.0.0.1:1"], "keyspaces": ["k"]},
        "destinations": [
            {"name": "ch", "type": "clickhouse", "endpoint": f"chdb://{tmp_path / 'chdb'}", "database": "k"}
        ],
        "checkpoint": {"path": str(tmp_path / "checkpoint.json")},
        "tuning": {"retryInitialSeconds": 0.2, "retryMaxSeconds": 1.0},
        "observability": {"metricsPort": port},
    }
    replicator = Replicator(write_config(tmp_path / "config.yaml", **config), {}, tmp_path)
    replicator.start()
    try:
        wait_until(lambda: _get(f"http://127.0.0.1:{port}/health")[0] == 503, 30, "/health 503", replicator.logs)
        assert '"cassandra": {"status": "down"' in _get(f"http://127.0.0.1:{port}/health")[1]
        wait_until(lambda: replicator.logs().count("cannot reach Cassandra") >= 2, 30, "retries", replicator.logs)
    finally:
        code = replicator.stop()
    assert code == 0
