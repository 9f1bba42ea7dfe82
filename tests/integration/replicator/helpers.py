"""Shared by the replicator's integration tests: a seeded workload's events and expected state,
and reading a destination's current-state view back into comparable values."""

from __future__ import annotations

import datetime
import ipaddress
import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from cdc_replicator.cql.types import CqlType
from cdc_replicator.events import ChangeEvent
from cdc_replicator.schema.model import TableSchema
from cdc_replicator.schema.registry import SchemaRegistry
from cdc_replicator.sinks.chtypes import ch_type
from cdc_replicator.sinks.chtypes import converter as ch_converter
from cdc_replicator.sinks.layout import default_target
from cdc_replicator.sinks.pgtypes import converter, pg_type

from tests.integration.commitlog.helpers import read_events, run, start_position
from tests.integration.commitlog.model import select_all
from tests.integration.commitlog.workload import Workload, schema_statements

Rows = dict[tuple[Any, ...], dict[str, Any]]


@dataclass
class Scenario:
    keyspace: str
    events: list[ChangeEvent]
    tables: dict[str, TableSchema]
    expected: dict[str, Rows]
    registry: SchemaRegistry

    def table_of(self, event: ChangeEvent) -> TableSchema | None:
        return self.registry.find(event.keyspace, event.table)


def run_workload(
    session: Any, registry: SchemaRegistry, cdc_raw: Any, keyspace: str, replication: str, seed: int, steps: int
) -> Scenario:
    """Create the workload's tables in a fresh keyspace, run it, read node 1's events back."""
    run(session, f"CREATE KEYSPACE {keyspace} WITH replication = {replication}")
    for statement in schema_statements(keyspace):
        run(session, statement)
    after = start_position(cdc_raw)
    workload = Workload(keyspace, seed, steps, alter_at=steps // 2)
    for statement in workload.statements():
        run(session, statement)
    registry.refresh(force=True)
    events = read_events(cdc_raw, registry, keyspace, after, include=lambda t: t.cdc)
    tables = {t.name: t for t in registry.tables() if t.keyspace == keyspace and t.cdc}
    expected = {name: select_all(session, table) for name, table in tables.items()}
    return Scenario(keyspace, events, tables, expected, registry)


def pg_value(value: Any, cql: CqlType) -> Any:
    """A value as the Postgres view shows it (jsonb parsed), for comparison."""
    if pg_type(cql) == "jsonb":
        text = converter(cql)(value)
        return None if text is None else json.loads(text)
    if cql.kind == "inet":
        return None if value is None else ipaddress.ip_address(value)
    if cql.kind == "counter":
        return value
    return converter(cql)(value)


def expected_rows(table: TableSchema, rows: Rows) -> Rows:
    keys = list(table.partition_key + table.clustering)
    columns = {name.decode(): c for name, c in table.columns.items() if c.current}
    out: Rows = {}
    for key, row in rows.items():
        converted_key = tuple(None if v is None else pg_value(v, c.type) for v, c in zip(key, keys, strict=True))
        out[converted_key] = {name: pg_value(row[name], columns[name].type) for name in columns}
    return out


async def view_rows(conn: asyncpg.Connection, schema: str, table: TableSchema) -> Rows:
    keys = [c.name for c in table.partition_key + table.clustering]
    columns = {name.decode(): c for name, c in table.columns.items() if c.current}
    records = await conn.fetch(f'SELECT * FROM "{schema}"."{default_target(table.keyspace, table.name)}"')
    out: Rows = {}
    for record in records:
        key = tuple(record[k] for k in keys)
        row = {}
        for name, column in columns.items():
            value = record[name]
            if isinstance(value, str) and pg_type(column.type) == "jsonb":
                value = json.loads(value)
            row[name] = value
        assert key not in out, f"duplicate key {key} in {table.name}"
        out[key] = row
    return out


def diff(table: str, expected: Rows, actual: Rows) -> list[str]:
    """Human-readable differences (empty when equal)."""
    problems = []
    for key in expected.keys() - actual.keys():
        problems.append(f"{table}: missing row {key}: {expected[key]}")
    for key in actual.keys() - expected.keys():
        problems.append(f"{table}: extra row {key}: {actual[key]}")
    for key in expected.keys() & actual.keys():
        for column, value in expected[key].items():
            if actual[key].get(column) != value:
                problems.append(f"{table} {key}.{column}: expected {value!r}, got {actual[key].get(column)!r}")
    return problems


# -- ClickHouse ---------------------------------------------------------------------------------

_CH_TEXT = {"ascii", "text", "varint", "decimal", "inet"}


def ch_value(value: Any, cql: CqlType) -> Any:
    """A value as the ClickHouse view shows it after ``ch_read``."""
    if value is None:
        return None
    if cql.kind == "counter":
        return value
    converted = ch_converter(cql)(value)
    if converted is None:
        return None
    if ch_type(cql) == "String" and cql.kind not in _CH_TEXT and cql.kind != "blob":
        return json.loads(converted)
    if cql.kind == "inet":
        return ipaddress.ip_address(converted)
    if isinstance(converted, datetime.datetime):
        return converted.astimezone(datetime.UTC).replace(tzinfo=None)
    if isinstance(converted, uuid.UUID):
        return converted
    return converted


def ch_read(value: Any, cql: CqlType) -> Any:
    if value is None:
        return None
    if isinstance(value, bytes):
        if cql.kind == "blob":
            return value
        text = value.decode()
        if cql.kind in _CH_TEXT:
            return ipaddress.ip_address(text) if cql.kind == "inet" else text
        return json.loads(text)
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).replace(tzinfo=None) if value.tzinfo else value
    return value


def ch_expected(table: TableSchema, rows: Rows) -> Rows:
    keys = list(table.partition_key + table.clustering)
    columns = {name.decode(): c for name, c in table.columns.items() if c.current}
    out: Rows = {}
    for key, row in rows.items():
        converted_key = tuple(ch_value(v, c.type) for v, c in zip(key, keys, strict=True))
        out[converted_key] = {name: ch_value(row[name], columns[name].type) for name in columns}
    return out


def ch_rows(client: Any, database: str, table: TableSchema) -> Rows:
    keys = list(table.partition_key + table.clustering)
    columns = {name.decode(): c for name, c in table.columns.items() if c.current}
    result = client.query(
        f"SELECT * FROM `{database}`.`{default_target(table.keyspace, table.name)}`",
        query_formats={"String": "bytes"},
    )
    out: Rows = {}
    for record in result.named_results():
        key = tuple(ch_read(record[k.name], k.type) for k in keys)
        assert key not in out, f"duplicate key {key} in {table.name}"
        out[key] = {name: ch_read(record[name], c.type) for name, c in columns.items()}
    return out
