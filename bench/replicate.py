"""Replication benchmark: sustained writes into the lab's Cassandra while ``cdc-replicator run``
replicates node 1 to Postgres, TimescaleDB (change history) and ClickHouse (chDB).

    python bench/replicate.py [--seconds 60] [--rate 5000] [--concurrency 64]

Prints one JSON line per destination:
    {"bench": "replicate", "destination": ..., "events_per_s": ..., "lag_p50_s": ..., "lag_p99_s": ...,
     "peak_rss_mb": ..., ...}

Rows go only to partitions node 1 owns (replication factor 1), so every write lands in node 1's
cdc_raw and Cassandra does no replica work. ``events_per_s`` is the rate the destination committed
during the write window (from ``cdc_events_processed_total``); lags are per event, destination
commit time minus Cassandra write time (``cdc_event_lag_seconds``, bucket-interpolated quantiles);
``peak_rss_mb`` is the replicator process's VmHWM. Segments stay in cdc_raw (other tests read it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
KEYSPACE = f"bench_replicate_{uuid.uuid4().hex[:8]}"
"""A fresh keyspace per run: the replicator skips earlier runs' rows still in cdc_raw."""
ROWS_PER_BATCH = 20


def _lab() -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "e2e.lab", "status", "--json"], check=True, capture_output=True, cwd=ROOT
    )
    status: dict[str, Any] = json.loads(out.stdout)
    return status


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def _samples(text: str, name: str) -> dict[str, dict[str, float]]:
    """``{destination: {le-or-table: value}}`` for one metric family."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.index("}")]))
        value = float(line.rsplit(" ", 1)[1])
        key = labels.get("le") or labels.get("table") or ""
        out.setdefault(labels.get("destination", ""), {})[key] = (
            out.get(labels.get("destination", ""), {}).get(key, 0.0) + value
        )
    return out


def _quantile(buckets: dict[str, float], q: float) -> float | None:
    ordered = sorted((float("inf") if le == "+Inf" else float(le), count) for le, count in buckets.items())
    total = ordered[-1][1] if ordered else 0
    if not total:
        return None
    rank, previous_le, previous_count = q * total, 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if le == float("inf"):
                return previous_le
            return previous_le + (le - previous_le) * (rank - previous_count) / max(count - previous_count, 1e-9)
        previous_le, previous_count = le, count
    return previous_le


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def main() -> int:  # noqa: PLR0915 - one scripted run, top to bottom
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=5000.0, help="rows written per second (0: as fast as possible)")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--log-level", default="warning", help="the replicator's (its log stays in the work dir)")
    args = parser.parse_args()

    from cassandra.cluster import Cluster  # noqa: PLC0415
    from cassandra.concurrent import execute_concurrent  # noqa: PLC0415
    from cassandra.policies import RoundRobinPolicy  # noqa: PLC0415
    from cassandra.query import BatchStatement, BatchType  # noqa: PLC0415

    lab = _lab()
    node = lab["cassandra"]["nodes"][0]
    cluster = Cluster([node["address"]], port=node["cql_port"], load_balancing_policy=RoundRobinPolicy())
    session = cluster.connect()
    session.execute(
        f"CREATE KEYSPACE {KEYSPACE} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
    )
    session.execute(
        f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.events (tenant int, id timeuuid, kind text, amount bigint, "
        "score double, at timestamp, PRIMARY KEY (tenant, id)) WITH cdc = true"
    )
    cluster.refresh_schema_metadata()
    metadata = cluster.metadata
    tenants = [
        t
        for t in range(5000)
        if any(h.address == node["address"] for h in metadata.get_replicas(KEYSPACE, t.to_bytes(4, "big", signed=True)))
    ][:200]
    insert = session.prepare(
        f"INSERT INTO {KEYSPACE}.events (tenant, id, kind, amount, score, at) "  # noqa: S608
        "VALUES (?, now(), ?, ?, ?, toTimestamp(now()))"
    )

    work = Path(tempfile.mkdtemp(prefix="bench-replicate-"))
    pg = lab["postgres"]["dsn"].split("://", 1)[1]
    creds, _, location = pg.rpartition("@")
    user, _, password = creds.partition(":")
    endpoint = location.split("/", 1)[0]
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    port = _free_port()
    pg_destination = {
        "endpoint": endpoint,
        "targetSchema": schema,
        "credentials": {"usernameEnv": "BENCH_PG_USER", "passwordEnv": "BENCH_PG_PASSWORD"},
    }
    config = {
        "pipeline": "bench/replicate",
        "source": {
            "nodeName": node["name"],
            "cdcRawPath": node["cdc_raw"],
            "contactPoints": [f"{node['address']}:{node['cql_port']}"],
            "keyspaces": [KEYSPACE],
            "deleteConsumedSegments": False,
        },
        "destinations": [
            {"name": "postgres", "type": "postgres", "database": "cdc_postgres", **pg_destination},
            {"name": "timescaledb", "type": "timescaledb", "database": "cdc_timescale", **pg_destination},
            {"name": "clickhouse", "type": "clickhouse", "endpoint": f"chdb://{work / 'chdb'}", "database": schema},
        ],
        "checkpoint": {"path": str(work / "checkpoint.json"), "intervalSeconds": 2},
        "tuning": {"batchSize": args.batch_size, "batchMaxWaitSeconds": 0.25, "pollIntervalSeconds": 0.1},
        "observability": {"metricsPort": port, "logLevel": args.log_level},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "BENCH_PG_USER": user, "BENCH_PG_PASSWORD": password}
    log = (work / "replicator.log").open("wb")
    binary = ROOT / ".venv" / "bin" / "cdc-replicator"
    proc = subprocess.Popen(
        [str(binary), "run", "--config", str(work / "config.yaml")], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _metrics(port)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError((work / "replicator.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        # Warm up (tables created, caught up with anything older), then measure a window of writes.
        written = 0
        stop = threading.Event()

        def write(until: float) -> None:
            # Unlogged batches of rows of one partition: one mutation (one commitlog entry) holds
            # ROWS_PER_BATCH rows, so a Python writer on a shared machine can keep the load up.
            nonlocal written
            i = 0
            begin = time.monotonic()
            while time.monotonic() < until and not stop.is_set():
                ahead = written / args.rate - (time.monotonic() - begin) if args.rate else 0
                if ahead > 0:
                    time.sleep(min(ahead, until - time.monotonic()))
                    continue
                batches = []
                for _ in range(25):
                    batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                    tenant = tenants[i % len(tenants)]
                    for k in range(ROWS_PER_BATCH):
                        batch.add(insert, (tenant, "k", i * ROWS_PER_BATCH + k, 0.5))
                    batches.append((batch, None))
                    i += 1
                results = execute_concurrent(session, batches, concurrency=args.concurrency)
                written += sum(ROWS_PER_BATCH for ok, _ in results if ok)

        write(time.monotonic() + 5)
        time.sleep(3)
        before = _metrics(port)
        begin = time.monotonic()
        written = 0
        write(begin + args.seconds)
        elapsed = time.monotonic() - begin
        after = _metrics(port)
        rss = 0.0
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) / 1024
        events_before = _samples(before, "cdc_events_processed_total")
        events_after = _samples(after, "cdc_events_processed_total")
        lag_before = _samples(before, "cdc_event_lag_seconds_bucket")
        lag_after = _samples(after, "cdc_event_lag_seconds_bucket")
        for destination in ("postgres", "timescaledb", "clickhouse"):
            committed = sum(_delta(events_after.get(destination, {}), events_before.get(destination, {})).values())
            buckets = _delta(lag_after.get(destination, {}), lag_before.get(destination, {}))
            p50, p99 = _quantile(buckets, 0.5), _quantile(buckets, 0.99)
            sys.stdout.write(
                json.dumps(
                    {
                        "bench": "replicate",
                        "destination": destination,
                        "events_per_s": round(committed / elapsed, 1),
                        "lag_p50_s": None if p50 is None else round(p50, 3),
                        "lag_p99_s": None if p99 is None else round(p99, 3),
                        "peak_rss_mb": round(rss, 1),
                        "written_per_s": round(written / elapsed, 1),
                        "seconds": round(elapsed, 1),
                    }
                )
                + "\n"
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}")
        cluster.shutdown()
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import asyncio, asyncpg\nasync def m():\n"
                f"  for db in ('cdc_postgres', 'cdc_timescale'):\n"
                f"    c = await asyncpg.connect({lab['postgres']['dsn']!r}.rsplit('/', 1)[0] + '/' + db)\n"
                f"    await c.execute('DROP SCHEMA IF EXISTS {schema} CASCADE'); await c.close()\n"
                "asyncio.run(m())",
            ],
            check=False,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
