"""``make demo``: the product's main job, end to end, on the lab's real services.

1. a shop keyspace in Cassandra with CDC tables holding PII (emails, phones, SSNs, names);
2. masking keys in OpenBao, handed to the replicator as the operator would (environment);
3. ``cdc-replicator run`` following node 1's ``cdc_raw`` into Postgres, TimescaleDB and
   ClickHouse, masking on the way;
4. a workload of inserts, updates, deletes and a TTL while it runs;
5. once every destination has committed past the last write: each destination's rows
   counted against Cassandra's, masked values shown, raw PII searched for (and not found).

Run it with ``make demo`` (which starts the lab first) or ``python -m e2e.demo``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from e2e.lab.control import status
from e2e.lab.errors import LabError
from e2e.lab.layout import Layout
from e2e.lab.ports import free_port as _free_port

KEYSPACE = "demo_shop"
VAULT_PATH = "cdc-demo/masking"
TIERS = ["bronze", "silver", "gold", "platinum"]
STATUSES = ["placed", "paid", "shipped", "returned"]


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    email: str
    phone: str
    ssn: str
    full_name: str


def _people(rng: random.Random, count: int) -> list[Person]:
    first = ["ada", "alan", "grace", "edsger", "barbara", "ken", "margaret", "dennis", "frances", "john"]
    last = ["lovelace", "turing", "hopper", "dijkstra", "liskov", "thompson", "hamilton", "ritchie", "allen"]
    out = []
    for n in range(count):
        f, la = rng.choice(first), rng.choice(last)
        out.append(Person(
            id=uuid.UUID(int=rng.getrandbits(128), version=4),
            email=f"{f}.{la}.{n}@example.com",
            phone=f"+1-555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
            ssn=f"{rng.randint(100, 899)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
            full_name=f"{f.title()} {la.title()}",
        ))  # fmt: skip
    return out


def _cassandra(node: dict[str, Any]) -> Any:
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile  # noqa: PLC0415
    from cassandra.policies import WhiteListRoundRobinPolicy  # noqa: PLC0415

    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([node["address"]]), request_timeout=30)
    cluster = Cluster([node["address"]], port=node["cql_port"], protocol_version=5,
                      execution_profiles={EXEC_PROFILE_DEFAULT: profile})  # fmt: skip
    return cluster, cluster.connect()


def create_schema(session: Any, nodes: int) -> None:
    # Every node holds every row, so node 1's cdc_raw (the one this demo follows) sees all writes.
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} "
        f"WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {nodes}}}"
    )
    session.execute(f"DROP TABLE IF EXISTS {KEYSPACE}.customers")
    session.execute(f"DROP TABLE IF EXISTS {KEYSPACE}.orders")
    session.execute(
        f"CREATE TABLE {KEYSPACE}.customers (id uuid PRIMARY KEY, email text, phone text, ssn text, "
        "full_name text, tier text, tags set<text>, updated_at timestamp) WITH cdc = true"
    )
    session.execute(
        f"CREATE TABLE {KEYSPACE}.orders (customer_id uuid, ordered_at timestamp, order_id timeuuid, "
        "amount decimal, status text, PRIMARY KEY (customer_id, ordered_at, order_id)) WITH cdc = true"
    )


def masking_keys(lab: dict[str, Any]) -> dict[str, str]:
    """The keys from OpenBao (made once), as environment variables the way the operator injects them."""
    import hvac  # noqa: PLC0415

    vault = hvac.Client(url=lab["openbao"]["addr"], token=lab["openbao"]["token"])
    try:
        stored = vault.secrets.kv.v2.read_secret_version(path=VAULT_PATH, raise_on_deleted_version=True)
    except hvac.exceptions.InvalidPath:
        fresh = {name: base64.b64encode(secrets.token_bytes(32)).decode() for name in ("tokens", "salt")}
        vault.secrets.kv.v2.create_or_update_secret(path=VAULT_PATH, secret=fresh)
        stored = vault.secrets.kv.v2.read_secret_version(path=VAULT_PATH, raise_on_deleted_version=True)
    data, version = stored["data"]["data"], str(stored["data"]["metadata"]["version"])
    say(f"masking keys from OpenBao {lab['openbao']['addr']} secret/{VAULT_PATH} (version {version})")
    return {
        "MASK_TOKENS": data["tokens"], "MASK_TOKENS_VERSION": version,
        "MASK_SALT": data["salt"], "MASK_SALT_VERSION": version,
    }  # fmt: skip


def replicator_config(lab: dict[str, Any], node: dict[str, Any], work: Path, metrics_port: int) -> dict[str, Any]:
    pg, ts = lab["postgres"]["dsn"], lab["timescaledb"]["dsn"]
    pg_endpoint = pg.split("@", 1)[1].split("/", 1)[0]
    creds = {"usernameEnv": "PG_USER", "passwordEnv": "PG_PASSWORD"}
    return {
        "pipeline": "demo/shop",
        "source": {
            "nodeName": node["name"],
            "cdcRawPath": node["cdc_raw"],
            "contactPoints": [f"{node['address']}:{node['cql_port']}"],
            "keyspaces": [KEYSPACE],
            # The lab's cdc_raw is shared with the tests; a production replicator deletes what it consumed.
            "deleteConsumedSegments": False,
        },
        "destinations": [
            {"name": "postgres", "type": "postgres", "endpoint": pg_endpoint, "database": pg.rsplit("/", 1)[1],
             "targetSchema": "demo", "credentials": creds},
            {"name": "timescaledb", "type": "timescaledb", "endpoint": pg_endpoint, "database": ts.rsplit("/", 1)[1],
             "targetSchema": "demo", "credentials": creds,
             "tables": [{"table": f"{KEYSPACE}.orders", "timeColumn": "ordered_at", "chunkInterval": "7 days"}]},
            {"name": "clickhouse", "type": "clickhouse", "endpoint": f"chdb://{work / 'clickhouse'}",
             "database": "demo"},
        ],
        "masking": {
            "policies": [{
                "name": "shop-pii",
                "rules": [
                    {"name": "email-token", "classification": "PII", "match": {"column": "email"},
                     "action": "hmac", "keyRef": "tokens"},
                    {"name": "phone-last4", "classification": "PII", "match": {"column": "phone"},
                     "action": "partial", "keepLast": 4},
                    {"name": "ssn-hash", "classification": "PII", "match": {"column": "ssn"},
                     "action": "hash", "saltRef": "salt"},
                    {"name": "name-redact", "classification": "PII", "match": {"column": "full_name"},
                     "action": "redact"},
                ],
            }],
            "keys": [{"name": "tokens", "env": "MASK_TOKENS"}, {"name": "salt", "env": "MASK_SALT"}],
        },
        "checkpoint": {"path": str(work / "checkpoint.json"), "intervalSeconds": 1},
        "tuning": {"batchSize": 2000, "batchMaxWaitSeconds": 0.5, "pollIntervalSeconds": 0.5},
        "observability": {"metricsPort": metrics_port},
    }  # fmt: skip


def workload(session: Any, people: list[Person], orders: int, rng: random.Random) -> dict[str, int]:
    from cassandra.concurrent import execute_concurrent_with_args  # noqa: PLC0415

    now = datetime.now(UTC).replace(microsecond=0)
    insert = session.prepare(
        f"INSERT INTO {KEYSPACE}.customers (id, email, phone, ssn, full_name, tier, tags, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )
    rows = [(p.id, p.email, p.phone, p.ssn, p.full_name, rng.choice(TIERS), {rng.choice(TIERS)}, now) for p in people]
    execute_concurrent_with_args(session, insert, rows, concurrency=32, raise_on_first_error=True)
    say(f"inserted {len(rows)} customers")

    order = session.prepare(
        f"INSERT INTO {KEYSPACE}.orders (customer_id, ordered_at, order_id, amount, status) VALUES (?, ?, now(), ?, ?)"
    )
    order_rows = [
        (rng.choice(people).id, now - timedelta(days=rng.randint(0, 90), minutes=rng.randint(0, 1440)),
         Decimal(rng.randint(100, 50_000)) / 100, rng.choice(STATUSES))
        for _ in range(orders)
    ]  # fmt: skip
    execute_concurrent_with_args(session, order, order_rows, concurrency=32, raise_on_first_error=True)
    say(f"inserted {len(order_rows)} orders")

    upgraded = rng.sample(people, len(people) // 5)
    for p in upgraded:
        session.execute(
            f"UPDATE {KEYSPACE}.customers SET tier = 'platinum', tags = tags + {{'upgraded'}}, "
            "email = %s WHERE id = %s",
            (p.email.replace("@", "+vip@"), p.id),
        )
    gone = rng.sample([p for p in people if p not in upgraded], len(people) // 20)
    for p in gone:
        session.execute(f"DELETE FROM {KEYSPACE}.customers WHERE id = %s", (p.id,))
        session.execute(f"DELETE FROM {KEYSPACE}.orders WHERE customer_id = %s", (p.id,))
    say(f"updated {len(upgraded)} customers (tier, tags, email) and deleted {len(gone)} with their orders")
    return {"customers": len(people) - len(gone), "upgraded": len(upgraded)}


class Replicator:
    def __init__(self, config: Path, env: dict[str, str], log: Path) -> None:
        self.config, self.env, self.log = config, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = Path(sys.executable).with_name("cdc-replicator")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(binary), "run", "--config", str(self.config)], stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
            )  # fmt: skip
        say(f"cdc-replicator run --config {self.config} (pid {self.proc.pid}, log {self.log})")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


def wait_caught_up(checkpoint: Path, end: Any, names: Sequence[str], replicator: Replicator, timeout: float) -> None:
    from cdc_replicator.events import Position  # noqa: PLC0415

    deadline, last_report = time.monotonic() + timeout, 0.0
    while time.monotonic() < deadline:
        if not replicator.alive():
            raise SystemExit(f"demo: the replicator exited; see {replicator.log}")
        try:
            report = json.loads(checkpoint.read_text())
        except (OSError, ValueError):
            report = {}
        committed = {d["name"]: d.get("position") for d in report.get("destinations", [])}
        done = [n for n in names if committed.get(n) and Position.parse(committed[n]) >= end]
        if len(done) == len(names):
            for d in report.get("destinations", []):
                say(f"  {d['name']:<12} committed {d.get('position')}  events {d.get('eventsTotal')}")
            return
        if time.monotonic() - last_report > 5:
            say(f"waiting for the destinations to reach {end}: {len(done)}/{len(names)} there")
            last_report = time.monotonic()
        time.sleep(0.5)
    raise SystemExit(f"demo: destinations did not catch up within {timeout:.0f}s; see {replicator.log}")


async def postgres_view(dsn: str, table: str) -> list[Any]:
    import asyncpg  # noqa: PLC0415

    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(f'SELECT * FROM demo."{table}"'))
    finally:
        await conn.close()


def show(lab: dict[str, Any], work: Path, people: list[Person], expected: dict[str, int], session: Any) -> bool:
    import clickhouse_connect  # noqa: PLC0415

    cassandra_orders = session.execute(f"SELECT count(*) FROM {KEYSPACE}.orders").one()[0]
    pg_customers = asyncio.run(postgres_view(lab["postgres"]["dsn"], f"{KEYSPACE}_customers"))
    pg_orders = asyncio.run(postgres_view(lab["postgres"]["dsn"], f"{KEYSPACE}_orders"))
    ts_orders = asyncio.run(postgres_view(lab["timescaledb"]["dsn"], f"{KEYSPACE}_orders"))
    ch = clickhouse_connect.get_client(interface="chdb", dsn=f"chdb://{work / 'clickhouse'}")
    try:
        ch_customers = ch.query(f"SELECT email, phone, ssn, full_name FROM demo.{KEYSPACE}_customers").result_rows
        ch_orders = ch.query(f"SELECT count() FROM demo.{KEYSPACE}_orders").result_rows[0][0]
    finally:
        ch.close()

    counts = {
        "cassandra": (expected["customers"], cassandra_orders),
        "postgres": (len(pg_customers), len(pg_orders)),
        "timescaledb": (None, len(ts_orders)),
        "clickhouse": (len(ch_customers), ch_orders),
    }
    say("rows (customers, orders):")
    for name, (c, o) in counts.items():
        say(f"  {name:<12} {'-' if c is None else c:>6} {o:>6}")
    sample = pg_customers[0]
    say("a customer as Postgres holds it (masked in the replicator):")
    for column in ("email", "phone", "ssn", "full_name", "tier"):
        say(f"  {column:<10} {sample[column]}")

    raw = {p.email for p in people} | {p.ssn for p in people} | {p.full_name for p in people}
    raw |= {p.email.replace("@", "+vip@") for p in people}
    seen = {str(v) for r in pg_customers for v in r.values()} | {str(v) for r in ch_customers for v in r}
    leaks = raw & seen
    say(f"raw PII values found in the destinations: {len(leaks)}")
    ok = (
        not leaks
        and counts["postgres"] == counts["clickhouse"] == counts["cassandra"]
        and counts["timescaledb"][1] == cassandra_orders
    )
    say("destinations equal Cassandra's row counts, nothing raw leaked" if ok else "MISMATCH: see above")
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--customers", type=int, default=400, help="customers to write (default 400)")
    parser.add_argument("--orders", type=int, default=2000, help="orders to write (default 2000)")
    parser.add_argument("--seed", type=int, default=7, help="workload seed")
    args = parser.parse_args(argv)

    from cdc_replicator.commitlog.reader import end_position  # noqa: PLC0415

    layout = Layout.default()
    try:
        lab = status(layout)
    except LabError as exc:
        print(exc.describe(), file=sys.stderr)
        return 1
    if not lab["ready"]:
        print("demo: the lab is not running; `make demo` starts it (or `python -m e2e.lab up`)", file=sys.stderr)
        return 1
    node = lab["cassandra"]["nodes"][0]
    work = layout.root / "demo"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    cluster, session = _cassandra(node)
    replicator = None
    try:
        create_schema(session, len(lab["cassandra"]["nodes"]))
        say(f"keyspace {KEYSPACE}: customers and orders WITH cdc = true on Cassandra {lab['cassandra']['version']}")
        env = masking_keys(lab)
        user, password = lab["postgres"]["dsn"].split("//", 1)[1].split("@", 1)[0].split(":", 1)
        env |= {"PG_USER": user, "PG_PASSWORD": password}
        metrics_port = _free_port()
        config = work / "replicator.yaml"
        import yaml  # noqa: PLC0415

        config.write_text(yaml.safe_dump(replicator_config(lab, node, work, metrics_port), sort_keys=False))
        replicator = Replicator(config, env, work / "replicator.log")
        replicator.start()

        rng = random.Random(args.seed)  # noqa: S311 - demo data
        people = _people(rng, args.customers)
        started = time.monotonic()
        expected = workload(session, people, args.orders, rng)
        end = end_position(Path(node["cdc_raw"]))
        wait_caught_up(work / "checkpoint.json", end, ["postgres", "timescaledb", "clickhouse"], replicator, 300)
        say(f"every destination caught up {time.monotonic() - started:.1f}s after the first write")
        say(f"metrics: http://127.0.0.1:{metrics_port}/metrics  health: http://127.0.0.1:{metrics_port}/health")
        code = replicator.stop()
        replicator = None
        say(f"replicator stopped on SIGTERM with exit status {code}")
        return 0 if show(lab, work, people, expected, session) and code == 0 else 1
    finally:
        if replicator is not None:
            replicator.stop()
        cluster.shutdown()


if __name__ == "__main__":
    sys.exit(main())
