"""Running ``cdc-replicator run`` with masking keys from the lab's OpenBao, into the lab's
Postgres, TimescaleDB and ClickHouse (chDB), for the masking tests that need the whole process.

Builds on ``tests.integration.replicator.process`` (the process, the config file, waiting);
what is here is masking-specific: a config with ``masking.vault``, all three destinations,
and reading /metrics.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.integration.replicator import running
from tests.integration.replicator.process import pg_parts
from tests.integration.replicator.running import caught_up, end_of
from tests.integration.replicator.running import http_get as get

__all__ = ["caught_up", "config", "destinations", "end_of", "get", "metric", "vault_env", "vault_section"]

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
    """The replicator tests' config (short waits and retries) with ``masking`` added."""
    out = running.config(tmp, cdc_raw, keyspace, port, dests, batch_size=batch_size)
    return {**out, "pipeline": "test/masking", "masking": masking}


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


def metric(text: str, name: str, labels: str = "") -> float | None:
    """The value of the sample ``name`` whose labels include ``labels`` (``key="tokens"``) in a Prometheus
    exposition, or None. Every sample also carries the replicator's pipeline and node."""
    from prometheus_client.parser import text_string_to_metric_families

    wanted = dict(re.findall(r'(\w+)="([^"]*)"', labels))
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and wanted.items() <= sample.labels.items():
                return float(sample.value)
    return None
