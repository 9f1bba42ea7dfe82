"""Running ``cdc-replicator run`` with masking keys from the lab's OpenBao, into the lab's
Postgres, TimescaleDB and ClickHouse (chDB), for the masking tests that need the whole process.

Builds on ``tests.integration.replicator.process`` (the process, the config file, waiting);
what is here is masking-specific: a config with ``masking.vault``, all three destinations,
and reading /metrics.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cdc_replicator.events import Position
from cdc_replicator.schema.registry import SchemaRegistry

from e2e.lab.layout import Layout
from tests.integration.commitlog.helpers import read_events
from tests.integration.replicator.process import pg_parts, positions, read_checkpoint

VAULT_TOKEN_ENV = "CDC_TEST_VAULT_TOKEN"


def destinations(
    tmp: Path, schema: str, postgres_dsn: str | None, timescaledb_dsn: str | None = None, clickhouse: bool = False,
    time_columns: dict[str, str] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, str]]:  # fmt: skip
    """The destinations ``pg``, ``ts`` and ``ch`` (those asked for), all in ``schema``, and their env."""
    out: list[dict[str, Any]] = []
    env: dict[str, str] = {}
    for name, kind, dsn in (("pg", "postgres", postgres_dsn), ("ts", "timescaledb", timescaledb_dsn)):
        if dsn is None:
            continue
        parts = pg_parts(dsn)
        prefix = name.upper()
        env |= {f"{prefix}_USER": parts["user"], f"{prefix}_PASSWORD": parts["password"]}
        destination: dict[str, Any] = {
            "name": name,
            "type": kind,
            "endpoint": parts["endpoint"],
            "database": parts["database"],
            "targetSchema": schema,
            "credentials": {"usernameEnv": f"{prefix}_USER", "passwordEnv": f"{prefix}_PASSWORD"},
        }
        if kind == "timescaledb" and time_columns:
            destination["tables"] = [{"table": t, "timeColumn": c} for t, c in time_columns.items()]
        out.append(destination)
    if clickhouse:
        out.append({"name": "ch", "type": "clickhouse", "endpoint": f"chdb://{tmp / 'chdb'}", "database": schema})
    return out, env


def config(
    tmp: Path, cdc_raw: Path, keyspace: str, port: int, dests: list[dict[str, Any]], masking: dict[str, Any],
    batch_size: int = 500,
) -> dict[str, Any]:  # fmt: skip
    return {
        "pipeline": "test/masking",
        "source": {
            "nodeName": "node1",
            "cdcRawPath": str(cdc_raw),
            "contactPoints": [f"127.0.0.1:{Layout.default().ports.cassandra_cql}"],
            "keyspaces": [keyspace],
            "deleteConsumedSegments": False,  # other tests read the lab's cdc_raw too
        },
        "destinations": dests,
        "masking": masking,
        "checkpoint": {"path": str(tmp / "checkpoint.json"), "intervalSeconds": 0.5},
        "tuning": {
            "batchSize": batch_size,
            "batchMaxWaitSeconds": 0.2,
            "pollIntervalSeconds": 0.2,
            "retryInitialSeconds": 0.2,
            "retryMaxSeconds": 2.0,
        },
        "observability": {"metricsPort": port},
    }


def vault_section(lab: dict[str, Any], keys: list[dict[str, Any]], refresh_seconds: float = 300) -> dict[str, Any]:
    """``masking.vault`` logging in with the token in ``$CDC_TEST_VAULT_TOKEN`` (see ``vault_env``)."""
    return {
        "address": lab["openbao"]["addr"],
        "auth": {"method": "token", "tokenEnv": VAULT_TOKEN_ENV},
        "refreshSeconds": refresh_seconds,
        "keys": keys,
    }


def vault_env(lab: dict[str, Any]) -> dict[str, str]:
    return {VAULT_TOKEN_ENV: str(lab["openbao"]["token"])}


def end_of(cdc_raw: Path, registry: SchemaRegistry, keyspace: str, after: Position | None) -> Position:
    """Where the last event of ``keyspace`` is in ``cdc_raw`` (other tests write there too)."""
    registry.refresh(force=True)
    events = read_events(cdc_raw, registry, keyspace, after, include=lambda t: t.cdc)
    assert events
    return max(e.position for e in events)


def caught_up(checkpoint_path: Path, end: Position, names: list[str]) -> bool:
    found = positions(read_checkpoint(checkpoint_path))
    return all(found.get(n) is not None and Position.parse(str(found[n])) >= end for n in names)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError):
        return 0, ""  # not listening (yet)


def metric(text: str, name: str, labels: str = "") -> float | None:
    """The value of ``name{labels}`` in a Prometheus exposition, or None."""
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return None
