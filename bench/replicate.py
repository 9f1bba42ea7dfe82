"""Replication benchmark: sustained writes into the lab's Cassandra while ``cdc-replicator run``
replicates node 1 to Postgres, TimescaleDB (change history) and ClickHouse (chDB).

    python -m bench.replicate [--seconds 60] [--rate 5000] [--concurrency 64]
    python -m bench.replicate --drain 100000 [--rounds 1]

Prints one JSON line per destination:
    {"bench": "replicate", "destination": ..., "events_per_s": ..., "lag_p50_s": ..., "lag_p99_s": ...,
     "peak_rss_mb": ..., ...}

``--drain ROWS`` measures what masking costs end to end instead: ROWS rows of a 12-column table
of personal data are written first, then ``cdc-replicator run`` drains that backlog as fast as
it can, once without masking and once with a realistic policy (4 of the 12 columns: email hmac,
phone partial, ssn hash, note redact), each time into fresh destinations (``--rounds`` repeats
the pair, alternating which goes first). Before each run the benchmark waits (up to 90 s) for
the machine to go quiet (below 25% busy over 2 s: Cassandra flushes and compacts after the
writes, Postgres vacuums after a drop), since on 2 cores any neighbour shows up in the figures.
One JSON line per run and destination, then one comparison per destination, of the *medians*
over the rounds (one disturbed run moves a median much less than a best or a mean):
    {"bench": "replicate_drain", "masking": "off"|"realistic", "destination": ..., "events_per_s": ...,
     "events": ..., "seconds": ..., "replicator_cpu_us_per_event": ..., "round": ..., "busy_before": ...}
    {"bench": "replicate_masking", "destination": ..., "unmasked_events_per_s": ..., "masked_events_per_s": ...,
     "masked_vs_unmasked": ..., "cpu_unmasked_vs_masked": ..., "target": 0.8, "rounds": ...}
``events_per_s`` there is events committed per second from the destination's first committed
event to its last (polled from ``/metrics`` every 0.2 s), so start-up and skipping older
segments do not count; ``replicator_cpu_us_per_event`` is the replicator's CPU time (all
threads) over that span per row, which contention inflates much less than wall time.
``busy_before`` is the machine's busy fraction (all cores) just before the run; ``cpu_unmasked_vs_masked``
compares the replicator's CPU per event, unmasked over masked (1.0: masking costs nothing).

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
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from statistics import median
from typing import Any

import yaml

from e2e.lab.ports import free_port as _free_port

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


DESTINATIONS = ("postgres", "timescaledb", "clickhouse")


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def _pg_env(lab: dict[str, Any]) -> dict[str, str]:
    creds = lab["postgres"]["dsn"].split("://", 1)[1].rpartition("@")[0]
    user, _, password = creds.partition(":")
    return {"BENCH_PG_USER": user, "BENCH_PG_PASSWORD": password}


def _config(
    lab: dict[str, Any], node: dict[str, Any], keyspace: str, *, work: Path, schema: str, port: int,
    args: argparse.Namespace,
) -> dict[str, Any]:  # fmt: skip
    """A replicator following node 1 into the three destinations, all in ``schema``."""
    endpoint = lab["postgres"]["dsn"].split("://", 1)[1].rpartition("@")[2].split("/", 1)[0]
    pg_destination = {
        "endpoint": endpoint,
        "targetSchema": schema,
        "credentials": {"usernameEnv": "BENCH_PG_USER", "passwordEnv": "BENCH_PG_PASSWORD"},
    }
    return {
        "pipeline": "bench/replicate",
        "source": {
            "nodeName": node["name"],
            "cdcRawPath": node["cdc_raw"],
            "contactPoints": [f"{node['address']}:{node['cql_port']}"],
            "keyspaces": [keyspace],
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


def _start(config: dict[str, Any], work: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``cdc-replicator run`` on ``config``, logging into the work dir; returns once /metrics answers."""
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    log = (work / "replicator.log").open("wb")
    binary = ROOT / ".venv" / "bin" / "cdc-replicator"
    proc = subprocess.Popen(
        [str(binary), "run", "--config", str(work / "config.yaml")], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            _metrics(config["observability"]["metricsPort"])
            return proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                _stop(proc)
                raise RuntimeError((work / "replicator.log").read_text()[-3000:]) from None
            time.sleep(0.5)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()


def _drop_schema(lab: dict[str, Any], schema: str) -> None:
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


def _local_tenants(cluster: Any, keyspace: str, node: dict[str, Any]) -> list[int]:
    """Up to 200 int partition keys that node 1 owns (with replication factor 1)."""
    cluster.refresh_schema_metadata()
    metadata = cluster.metadata
    return [
        t
        for t in range(5000)
        if any(h.address == node["address"] for h in metadata.get_replicas(keyspace, t.to_bytes(4, "big", signed=True)))
    ][:200]


PII_COLUMNS = (
    "tenant int, id timeuuid, email text, phone text, ssn text, name text, city text, kind text, "
    "amount bigint, score double, at timestamp, note text, PRIMARY KEY (tenant, id)"
)
"""The drain benchmark's table: 12 columns, 4 of them masked by ``realistic_policy``."""


def realistic_policy(keyspace: str) -> dict[str, Any]:
    """A third of the columns masked, with the actions a real policy mixes."""

    def rule(name: str, action: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "classification": "PII", "match": {"keyspace": keyspace, "column": name},
                "action": action, **extra}  # fmt: skip

    return {
        "policies": [
            {
                "name": "realistic",
                "rules": [
                    rule("email", "hmac", keyRef="tokens"),
                    rule("phone", "partial", keepLast=4),
                    rule("ssn", "hash", saltRef="salt"),
                    rule("note", "redact"),
                ],
            }
        ],
        "keys": [{"name": "tokens", "env": "BENCH_MASK_TOKENS"}, {"name": "salt", "env": "BENCH_MASK_SALT"}],
    }


MASK_ENV = {
    "BENCH_MASK_TOKENS": "YmVuY2gtdG9rZW5zLWtleS0wMTIzNDU2Nzg5YWJjZGVm",  # base64 of a 32-byte bench key
    "BENCH_MASK_TOKENS_VERSION": "1",
    "BENCH_MASK_SALT": "YmVuY2gtc2FsdC0wMTIzNDU2Nzg5YWJjZGVmZ2hpams=",
    "BENCH_MASK_SALT_VERSION": "1",
}


def _events_by_destination(text: str) -> dict[str, float]:
    return {d: sum(tables.values()) for d, tables in _samples(text, "cdc_events_processed_total").items()}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _busy_fraction(seconds: float = 2.0) -> float:
    """How busy the whole machine was over ``seconds`` (0..1 over all cores), from /proc/stat."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values) - idle, sum(values)

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(1, total1 - total0)


def _settle(below: float = 0.25, patience_s: float = 90.0) -> float:
    """Wait until the machine is quiet (or ``patience_s`` passed); returns the last busy fraction."""
    deadline = time.monotonic() + patience_s
    busy = _busy_fraction()
    while busy >= below and time.monotonic() < deadline:
        busy = _busy_fraction()
    return busy


def _drain_once(
    lab: dict[str, Any], node: dict[str, Any], keyspace: str, *, rows: int, masked: bool, args: argparse.Namespace
) -> tuple[dict[str, tuple[float, float]], float]:
    """Run a replicator over the backlog into fresh destinations: ``{destination: (events, seconds)}``,
    and the CPU seconds the replicator spent from its first committed event to the last."""
    work = Path(tempfile.mkdtemp(prefix="bench-drain-"))
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    port = _free_port()
    config = _config(lab, node, keyspace, work=work, schema=schema, port=port, args=args)
    env = {**os.environ, **_pg_env(lab)}
    if masked:
        config["masking"] = realistic_policy(keyspace)
        env |= MASK_ENV
    proc = _start(config, work, env)
    first: dict[str, tuple[float, float]] = {}
    last: dict[str, tuple[float, float]] = {}
    cpu_begin = cpu_end = 0.0
    try:
        deadline = time.monotonic() + max(600.0, rows / 200)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError((work / "replicator.log").read_text()[-3000:])
            try:
                counts = _events_by_destination(_metrics(port))
            except OSError:
                counts = {}
            now = time.monotonic()
            if not first and any(counts.values()):
                cpu_begin = _cpu_seconds(proc.pid)
            for destination in DESTINATIONS:
                count = counts.get(destination, 0.0)
                if count > 0 and destination not in first:
                    first[destination] = (count, now)
                if count > last.get(destination, (0.0, 0.0))[0]:
                    last[destination] = (count, now)
            if all(last.get(d, (0.0, 0.0))[0] >= rows for d in DESTINATIONS):
                cpu_end = _cpu_seconds(proc.pid)
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"the backlog was not drained in time: {last}")
    finally:
        _stop(proc)
        _drop_schema(lab, schema)
        shutil.rmtree(work, ignore_errors=True)  # its chDB data; a failure above quoted the log already
    return {d: (last[d][0] - first[d][0], last[d][1] - first[d][1]) for d in DESTINATIONS}, cpu_end - cpu_begin


def drain(args: argparse.Namespace) -> int:
    """``--drain ROWS``: the same backlog drained unmasked and masked, see the module docstring."""
    from cassandra.cluster import Cluster  # noqa: PLC0415
    from cassandra.concurrent import execute_concurrent  # noqa: PLC0415
    from cassandra.policies import RoundRobinPolicy  # noqa: PLC0415
    from cassandra.query import BatchStatement, BatchType  # noqa: PLC0415

    lab = _lab()
    node = lab["cassandra"]["nodes"][0]
    cluster = Cluster([node["address"]], port=node["cql_port"], load_balancing_policy=RoundRobinPolicy())
    session = cluster.connect()
    keyspace = f"bench_drain_{uuid.uuid4().hex[:8]}"
    try:
        session.execute(
            f"CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        )
        session.execute(f"CREATE TABLE {keyspace}.people ({PII_COLUMNS}) WITH cdc = true")
        tenants = _local_tenants(cluster, keyspace, node)
        insert = session.prepare(
            f"INSERT INTO {keyspace}.people (tenant, id, email, phone, ssn, name, city, kind, amount, score, at, "  # noqa: S608
            "note) VALUES (?, now(), ?, ?, ?, ?, ?, ?, ?, ?, toTimestamp(now()), ?)"
        )
        written, i = 0, 0
        while written < args.drain:
            batches = []
            for _ in range(25):
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for k in range(ROWS_PER_BATCH):
                    n = i * ROWS_PER_BATCH + k
                    batch.add(
                        insert,
                        (tenants[i % len(tenants)], f"person{n}@example.org", f"+1-555-{n % 1000:03d}-{n % 9973:04d}",
                         f"{n % 900 + 100}-{n % 90 + 10}-{n % 9000 + 1000}", f"Person {n}", "Springfield", "signup",
                         n, n / 7, f"called about claim {n}"),
                    )  # fmt: skip
                batches.append((batch, None))
                i += 1
            results = execute_concurrent(session, batches, concurrency=args.concurrency, raise_on_first_error=True)
            written += sum(ROWS_PER_BATCH for ok, _ in results if ok)
        results_by: dict[tuple[str, str], list[float]] = {}
        cpu_by: dict[str, list[float]] = {}
        for round_ in range(args.rounds):
            order = (False, True) if round_ % 2 == 0 else (True, False)
            for masked in order:
                label = "realistic" if masked else "off"
                print(f"bench: round {round_ + 1}, masking {label}: waiting for a quiet machine", file=sys.stderr)
                busy = _settle()
                runs, cpu = _drain_once(lab, node, keyspace, rows=written, masked=masked, args=args)
                cpu_by.setdefault(label, []).append(cpu / written * 1e6)
                for destination, (events, seconds) in runs.items():
                    rate = events / seconds if seconds > 0 else 0.0
                    results_by.setdefault((destination, label), []).append(rate)
                    _emit({"bench": "replicate_drain", "masking": label, "destination": destination,
                           "events_per_s": round(rate, 1), "events": int(events), "seconds": round(seconds, 2),
                           "replicator_cpu_us_per_event": round(cpu / written * 1e6, 1),
                           "round": round_ + 1, "busy_before": round(busy, 2)})  # fmt: skip
        cpu_ratio = median(cpu_by["off"]) / median(cpu_by["realistic"])
        for destination in DESTINATIONS:
            off = median(results_by[(destination, "off")])
            on = median(results_by[(destination, "realistic")])
            _emit({"bench": "replicate_masking", "destination": destination, "unmasked_events_per_s": round(off, 1),
                   "masked_events_per_s": round(on, 1), "masked_vs_unmasked": round(on / off, 3) if off else None,
                   "cpu_unmasked_vs_masked": round(cpu_ratio, 3), "target": 0.8, "rows": written,
                   "rounds": args.rounds})  # fmt: skip
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
        cluster.shutdown()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=5000.0, help="rows written per second (0: as fast as possible)")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--log-level", default="warning", help="the replicator's (its log is quoted on failure)")
    parser.add_argument(
        "--drain", type=int, default=0, metavar="ROWS", help="compare masked and unmasked drains of ROWS rows instead"
    )
    parser.add_argument("--rounds", type=int, default=1, help="--drain: pairs of runs (their medians are compared)")
    args = parser.parse_args()
    return drain(args) if args.drain else sustained(args)


def sustained(args: argparse.Namespace) -> int:  # noqa: PLR0915 - one scripted run, top to bottom
    """Writes at ``--rate`` for ``--seconds`` while the replicator keeps up: events/s, lags, RSS."""
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
    tenants = _local_tenants(cluster, KEYSPACE, node)
    insert = session.prepare(
        f"INSERT INTO {KEYSPACE}.events (tenant, id, kind, amount, score, at) "  # noqa: S608
        "VALUES (?, now(), ?, ?, ?, toTimestamp(now()))"
    )

    work = Path(tempfile.mkdtemp(prefix="bench-replicate-"))
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    port = _free_port()
    config = _config(lab, node, KEYSPACE, work=work, schema=schema, port=port, args=args)
    proc = _start(config, work, {**os.environ, **_pg_env(lab)})
    try:
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
        for destination in DESTINATIONS:
            committed = sum(_delta(events_after.get(destination, {}), events_before.get(destination, {})).values())
            buckets = _delta(lag_after.get(destination, {}), lag_before.get(destination, {}))
            p50, p99 = _quantile(buckets, 0.5), _quantile(buckets, 0.99)
            _emit(
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
    finally:
        _stop(proc)
        session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}")
        cluster.shutdown()
        _drop_schema(lab, schema)
        shutil.rmtree(work, ignore_errors=True)  # the replicator's chDB data and log
    return 0


if __name__ == "__main__":
    sys.exit(main())
