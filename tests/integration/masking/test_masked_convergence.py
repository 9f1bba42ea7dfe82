"""Masked convergence: ``cdc-replicator run`` with a policy masking about half the columns (a
partition-key column, a clustering column, set elements, a map value by key, UDT fields, list
elements; hmac, hash, partial, redact and null), keys from OpenBao, replicating a seeded random
workload into Postgres, TimescaleDB and ClickHouse. Each destination's current-state view must
equal Cassandra's ``SELECT *`` with the same masking applied here, by ``pii``'s independent
implementation of the rules."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cdc_replicator.cql.types import CqlType
from cdc_replicator.schema.model import TableSchema
from cdc_replicator.schema.registry import SchemaRegistry
from cdc_replicator.sinks.layout import default_target

from tests.integration.commitlog.helpers import run, start_position, unique_keyspace
from tests.integration.commitlog.model import select_all
from tests.integration.masking import harness, pii
from tests.integration.masking.conftest import KeyWriter
from tests.integration.replicator.helpers import Rows, ch_read, ch_value, diff, pg_value, view_rows
from tests.integration.replicator.process import Replicator, chdb_records, free_port, wait_until, write_config

pytestmark = pytest.mark.integration


def destination_types(table: TableSchema) -> dict[str, CqlType]:
    columns = {c.name: c.type for c in (*table.partition_key, *table.clustering)}
    columns |= {name.decode(): c.type for name, c in table.columns.items() if c.current}
    return {name: pii.RETYPED.get((table.name, name), cql) for name, cql in columns.items()}


def expected(table: TableSchema, rows: Rows, convert: Any) -> Rows:
    """Cassandra's rows, masked by the independent implementation, as a destination shows them."""
    types = destination_types(table)
    key_names = [c.name for c in (*table.partition_key, *table.clustering)]
    out: Rows = {}
    for key, row in rows.items():
        masked_key, masked = pii.mask_row(table.name, key_names, key, row)
        converted_key = tuple(convert(v, types[n]) for v, n in zip(masked_key, key_names, strict=True))
        assert converted_key not in out, f"masking merged two rows of {table.name} ({converted_key})"
        out[converted_key] = sorted_sets(table.name, {name: convert(v, types[name]) for name, v in masked.items()})
    return out


def sorted_sets(table: str, row: dict[str, Any]) -> dict[str, Any]:
    return {n: sorted(v) if (table, n) in pii.SETS and v is not None else v for n, v in row.items()}


def pg_convert(value: Any, cql: CqlType) -> Any:
    return None if value is None else pg_value(value, cql)


async def pg_compare(dsn: str, schema: str, tables: list[TableSchema], session: Any) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        problems: list[str] = []
        for table in tables:
            want = expected(table, select_all(session, table), pg_convert)
            got = {k: sorted_sets(table.name, row) for k, row in (await view_rows(conn, schema, table)).items()}
            problems += diff(f"{schema}.{table.name}", want, got)
        return problems
    finally:
        await conn.close()


def ch_compare(path: Path, database: str, tables: list[TableSchema], session: Any) -> list[str]:
    problems: list[str] = []
    for table in tables:
        types = destination_types(table)
        keys = [c.name for c in (*table.partition_key, *table.clustering)]
        got: Rows = {}
        for record in chdb_records(path, database, default_target(table.keyspace, table.name)):
            key = tuple(ch_read(record[k], types[k]) for k in keys)
            row = {n: ch_read(record[n], types[n]) for n in types if n not in keys}
            got[key] = sorted_sets(table.name, row)
        problems += diff(f"clickhouse.{table.name}", expected(table, select_all(session, table), ch_value), got)
    return problems


@pytest.mark.parametrize("seed", [5, 6])
def test_masked_random_workload_converges_in_all_three_destinations(
    seed: int, tmp_path: Path, lab: dict[str, Any], write_key: KeyWriter, cql_session: Any, registry: SchemaRegistry,
    cdc_raw: Path, replication: str, postgres_dsn: str, timescaledb_dsn: str, pg_schema: str,
) -> None:  # fmt: skip
    keyspace = unique_keyspace("mask_conv")
    run(cql_session, f"CREATE KEYSPACE {keyspace} WITH replication = {replication}")
    for statement in pii.schema(keyspace):
        run(cql_session, statement)
    tokens = write_key("tokens", pii.TOKENS_KEY)
    salt = write_key("salt", pii.SALT)
    start = start_position(cdc_raw)
    for cql, params in pii.workload(keyspace, seed=seed, steps=400):
        run(cql_session, cql, params)
    end = harness.end_of(cdc_raw, registry, keyspace, start)

    dests, env = harness.destinations(
        tmp_path, pg_schema, postgres_dsn, timescaledb_dsn, clickhouse=True,
        time_columns={f"{keyspace}.visits": "visit_at", f"{keyspace}.ledger": "day"},
    )  # fmt: skip
    masking = {"policies": [pii.policy(keyspace)], "vault": harness.vault_section(lab, pii.key_sources(tokens, salt))}
    config = harness.config(tmp_path, cdc_raw, keyspace, free_port(), dests, masking, batch_size=97)
    replicator = Replicator(write_config(tmp_path / "config.yaml", **config), env | harness.vault_env(lab), tmp_path)
    replicator.start()
    try:
        wait_until(
            lambda: harness.caught_up(tmp_path / "checkpoint.json", end, ["pg", "ts", "ch"]),
            240, "all three destinations to catch up", replicator.logs,
        )  # fmt: skip
    finally:
        code = replicator.stop()
    assert code == 0, replicator.logs()

    registry.refresh(force=True)
    tables = sorted((t for t in registry.tables() if t.keyspace == keyspace and t.cdc), key=lambda t: t.name)
    assert [t.name for t in tables] == ["ledger", "visits"]
    problems = asyncio.run(pg_compare(postgres_dsn, pg_schema, tables, cql_session))
    problems += asyncio.run(pg_compare(timescaledb_dsn, pg_schema, tables, cql_session))
    problems += ch_compare(tmp_path / "chdb", pg_schema, tables, cql_session)
    assert not problems, "\n".join(problems[:40])
    # The workload must have exercised what the policy masks: rows, and each masked part populated.
    visits = select_all(cql_session, tables[1])
    assert len(visits) >= 10
    assert {key[0] for key in visits} >= {"EDGE-2", "EDGE-3", "EDGE-4"}
    for column in ("email", "tags", "attrs", "contact", "phones", "diagnosis", "age"):
        assert any(row[column] is not None for row in visits.values()), column


def test_row_alive_only_through_a_nulled_column_stays(
    tmp_path: Path, cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str,
    postgres_dsn: str, pg_schema: str,
) -> None:  # fmt: skip
    keyspace = unique_keyspace("mask_null")
    run(cql_session, f"CREATE KEYSPACE {keyspace} WITH replication = {replication}")
    run(cql_session, f"CREATE TABLE {keyspace}.t (id int PRIMARY KEY, diagnosis text, n int) WITH cdc = true")
    start = start_position(cdc_raw)
    run(cql_session, f"INSERT INTO {keyspace}.t (id, diagnosis, n) VALUES (1, 'ICD-1', 1)")
    run(cql_session, f"UPDATE {keyspace}.t SET diagnosis = 'ICD-2' WHERE id = 2")  # no row marker
    end = harness.end_of(cdc_raw, registry, keyspace, start)
    dests, env = harness.destinations(tmp_path, pg_schema, postgres_dsn)
    masking = {"policies": [{"name": "p", "rules": [pii.rule("diagnosis", "diagnosis", "null", "PHI")]}]}
    config = harness.config(tmp_path, cdc_raw, keyspace, free_port(), dests, masking)
    replicator = Replicator(write_config(tmp_path / "config.yaml", **config), env, tmp_path)
    replicator.start()
    try:
        wait_until(lambda: harness.caught_up(tmp_path / "checkpoint.json", end, ["pg"]), 120, "pg", replicator.logs)
    finally:
        assert replicator.stop() == 0

    async def read() -> list[tuple[int, Any, Any]]:
        conn = await asyncpg.connect(postgres_dsn)
        try:
            rows = await conn.fetch(f'SELECT id, diagnosis, n FROM "{pg_schema}"."{keyspace}_t" ORDER BY id')
        finally:
            await conn.close()
        return [(r["id"], r["diagnosis"], r["n"]) for r in rows]

    assert asyncio.run(read()) == [(1, None, 1), (2, None, None)]
