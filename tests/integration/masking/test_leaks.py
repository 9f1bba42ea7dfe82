"""The leak test: PII and PHI written through Cassandra, replicated by ``cdc-replicator run`` with
a policy covering them into Postgres, TimescaleDB and ClickHouse, must appear nowhere the
replicator writes: no destination table or view (every column as text), no dead-letter table
(some rows are poison, so dead letters exist in each destination), not stdout/stderr, not
``/metrics`` or ``/health``, not the checkpoint file.

Values that are masked by the policy are collected from the statements themselves: emails,
phone numbers, SSNs, patient ids, and the free texts the policy redacts, nulls or tokenizes."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cdc_replicator.schema.registry import SchemaRegistry

from tests.integration.commitlog.helpers import run, start_position, unique_keyspace
from tests.integration.masking import harness, pii
from tests.integration.masking.conftest import KeyWriter
from tests.integration.replicator.process import Replicator, free_port, wait_until, write_config

pytestmark = pytest.mark.integration

SECRET_SHAPES = [
    re.compile(r"@example\.org$"),  # emails
    re.compile(r"^\+1-555-"),  # phone numbers
    re.compile(r"^\d{3}-\d{2}-\d{4}"),  # SSNs
    re.compile(r"^PAT-"),  # patient ids
    re.compile(r"^(note|ICD|tag|memo) \d+ "),  # texts the policy redacts, nulls or tokenizes
]
"""What counts as a value the policy must hide (labels and MRN texts stay in clear, by policy)."""


def secrets_in(params: Iterable[Any]) -> set[str]:
    found: set[str] = set()
    for value in params:
        if isinstance(value, str):
            if any(shape.search(value) for shape in SECRET_SHAPES):
                found.add(value)
        elif isinstance(value, dict):
            found |= secrets_in(value.values())
        elif isinstance(value, list | set | tuple):
            found |= secrets_in(value)
    return found


def poison(ks: str) -> list[tuple[str, tuple[Any, ...]]]:
    """Rows whose unmasked columns no destination can hold, next to PII in masked ones; and a
    range deletion over the hashed clustering column, bounded by a raw SSN."""
    insert = (
        f"INSERT INTO {ks}.intake (patient_id, at, email, ssn, phone, note, d) VALUES (%s, {pii.BASE_MS}, %s, %s, "
        "%s, %s, %s)"
    )
    rows = []
    for n in range(3):
        pii_values = (f"PAT-9{n:04d}", f"poison{n}.ada@example.org", f"900-1{n}-4242", f"+1-555-777-{n:04d}")
        rows.append((insert, (*pii_values, f"nul\x00inside {n}", "2024-01-01")))  # Postgres refuses NUL in text
        pii_values = (f"PAT-8{n:04d}", f"old{n}.bob@example.org", f"800-2{n}-4242", f"+1-555-888-{n:04d}")
        rows.append((insert, (*pii_values, f"old date {n}", "1200-06-01")))  # outside ClickHouse's Date32
        pii_values = (f"PAT-7{n:04d}", f"fine{n}.cy@example.org", f"700-3{n}-4242", f"+1-555-999-{n:04d}")
        rows.append((insert, (*pii_values, f"fine {n}", "2024-02-02")))
    rows.append(
        (f"DELETE FROM {ks}.ledger WHERE account = 1 AND day = %s AND ssn >= %s", (pii.VISITS[0], "555-12-3456"))
    )
    return rows


def pg_dump(dsn: str, schema: str) -> dict[str, str]:
    """Every table and view of ``schema``, each row cast to text."""

    async def dump() -> dict[str, str]:
        conn = await asyncpg.connect(dsn)
        try:
            names = await conn.fetch("SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema)
            out = {}
            for record in names:
                name = record["table_name"]
                text = await conn.fetchval(f'SELECT string_agg(t::text, E\'\\n\') FROM "{schema}"."{name}" t')
                out[name] = text or ""
            return out
        finally:
            await conn.close()

    return asyncio.run(dump())


def ch_dump(path: Path, database: str) -> dict[str, str]:
    """Every table and view of a chDB database as raw TSV, read in a child process (chDB locks its path)."""
    code = (
        "import json, sys, clickhouse_connect\n"
        f"c = clickhouse_connect.get_client(interface='chdb', dsn='chdb://{path}')\n"
        f"names = [r[0] for r in c.query('SHOW TABLES FROM `{database}`').result_rows]\n"
        "out = {n: c.raw_query(f'SELECT * FROM `" + database + "`.`{n}` FORMAT TSVRaw').decode('utf-8', 'replace')"
        " for n in names}\n"
        "sys.stdout.write(json.dumps(out))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
    import json

    dumped: dict[str, str] = json.loads(result.stdout)
    return dumped


def test_no_raw_pii_anywhere_the_replicator_writes(
    tmp_path: Path, lab: dict[str, Any], write_key: KeyWriter, cql_session: Any, registry: SchemaRegistry,
    cdc_raw: Path, replication: str, postgres_dsn: str, timescaledb_dsn: str, pg_schema: str,
) -> None:  # fmt: skip
    keyspace = unique_keyspace("mask_leak")
    run(cql_session, f"CREATE KEYSPACE {keyspace} WITH replication = {replication}")
    for statement in pii.schema(keyspace):
        run(cql_session, statement)
    run(
        cql_session,
        f"CREATE TABLE {keyspace}.intake (patient_id text, at timestamp, email text, ssn text, phone text, note text, "
        "d date, PRIMARY KEY (patient_id, at)) WITH cdc = true",
    )
    tokens = write_key("tokens", pii.TOKENS_KEY)
    salt = write_key("salt", pii.SALT)
    start = start_position(cdc_raw)
    statements = [*pii.workload(keyspace, seed=9, steps=250), *poison(keyspace)]
    secrets: set[str] = set()
    for cql, params in statements:
        run(cql_session, cql, params)
        secrets |= secrets_in(params)
    end = harness.end_of(cdc_raw, registry, keyspace, start)
    assert len(secrets) > 300
    assert {"555-12-3456", "PAT-90000", "poison0.ada@example.org", "+1-555-888-0001"} <= secrets

    dests, env = harness.destinations(
        tmp_path, pg_schema, postgres_dsn, timescaledb_dsn, clickhouse=True,
        # ledger keeps a change history in TimescaleDB; intake (with the poison) does not: a NUL in
        # a history row blocks that destination instead of going to its dead letters (reported).
        time_columns={f"{keyspace}.visits": "visit_at", f"{keyspace}.intake": "at"},
    )  # fmt: skip
    policy = pii.policy(keyspace)
    policy["rules"].append(
        {"name": "alt-emails", "classification": "PII", "match": {"keyspace": keyspace, "columnRegex": "alt_.*"},
         "action": "hash", "saltRef": "salt"}
    )  # fmt: skip
    masking = {"policies": [policy], "vault": harness.vault_section(lab, pii.key_sources(tokens, salt))}
    port = free_port()
    config = harness.config(tmp_path, cdc_raw, keyspace, port, dests, masking, batch_size=50)
    replicator = Replicator(write_config(tmp_path / "config.yaml", **config), env | harness.vault_env(lab), tmp_path)
    replicator.start()
    try:
        wait_until(
            lambda: harness.caught_up(tmp_path / "checkpoint.json", end, ["pg", "ts", "ch"]),
            240, "all three destinations to catch up", replicator.logs,
        )  # fmt: skip
        # While it runs: a column added to a table, and a new table, both with PII the policy's
        # patterns cover (the schema changes on the fly, and plans must be rebuilt, not skipped).
        late = [
            (f"ALTER TABLE {keyspace}.intake ADD alt_email text", ()),
            (f"CREATE TABLE {keyspace}.late (patient_id text PRIMARY KEY, email text, alt_email text) WITH cdc = true",
             ()),
        ]  # fmt: skip
        for n in range(5):
            late.append(
                (f"INSERT INTO {keyspace}.intake (patient_id, at, alt_email) VALUES (%s, {pii.BASE_MS}, %s)",
                 (f"PAT-6{n:04d}", f"late{n}.alt@example.org"))
            )  # fmt: skip
            late.append(
                (f"INSERT INTO {keyspace}.late (patient_id, email, alt_email) VALUES (%s, %s, %s)",
                 (f"PAT-5{n:04d}", f"late{n}.new@example.org", f"late{n}.newalt@example.org"))
            )  # fmt: skip
        for cql, params in late:
            run(cql_session, cql, params)
            secrets |= secrets_in(params)
        end = harness.end_of(cdc_raw, registry, keyspace, end)
        wait_until(
            lambda: harness.caught_up(tmp_path / "checkpoint.json", end, ["pg", "ts", "ch"]),
            240, "the late changes", replicator.logs,
        )  # fmt: skip
        places = {"/metrics": harness.get(f"http://127.0.0.1:{port}/metrics")[1]}
        places["/health"] = harness.get(f"http://127.0.0.1:{port}/health")[1]
    finally:
        code = replicator.stop()
    assert code == 0, replicator.logs()
    places["checkpoint"] = (tmp_path / "checkpoint.json").read_text()
    places["logs"] = "\n".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("replicator-*.log")))
    places |= {f"postgres {name}": text for name, text in pg_dump(postgres_dsn, pg_schema).items()}
    places |= {f"timescaledb {name}": text for name, text in pg_dump(timescaledb_dsn, pg_schema).items()}
    places |= {f"clickhouse {name}": text for name, text in ch_dump(tmp_path / "chdb", pg_schema).items()}

    # The search is not vacuous: masked values, and dead letters in every destination, are there.
    assert pii.token("fine0.cy@example.org") in places[f"postgres {keyspace}_intake__rows"]
    assert pii.token("poison0.ada@example.org") in places["postgres cdc_dead_letters"]
    assert "cdc_masking_masked_values_total" in places["/metrics"]
    assert pii.salted("late0.alt@example.org") in places[f"postgres {keyspace}_intake__rows"]
    assert pii.token("late0.new@example.org") in places[f"clickhouse {keyspace}_late__rows"]
    for destination in ("postgres", "timescaledb", "clickhouse"):
        assert places[f"{destination} cdc_dead_letters"], f"no dead letters in {destination}"
    assert "masked clustering column" in places["postgres cdc_dead_letters"]
    assert "Date32" in places["clickhouse cdc_dead_letters"]

    hits = sorted(f"{where}: {value!r}" for where, text in places.items() for value in secrets if value in text)
    assert not hits, f"{len(hits)} raw values found:\n" + "\n".join(hits[:40])
