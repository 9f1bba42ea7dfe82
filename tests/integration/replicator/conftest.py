"""Fixtures for the replicator's integration tests against the lab."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cdc_replicator.schema.registry import SchemaRegistry

from tests.integration.commitlog.helpers import registry_for, unique_keyspace


@pytest.fixture(scope="module")
def cdc_raw(cassandra_node: dict[str, Any]) -> Path:
    return Path(cassandra_node["cdc_raw"])


@pytest.fixture(scope="module")
def registry(cql_session: Any) -> SchemaRegistry:
    return registry_for(cql_session)


@pytest.fixture
def keyspace_name() -> str:
    return unique_keyspace("repl")


def _drop_schema(dsn: str, schema: str) -> None:
    async def drop() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture
def pg_schema(postgres_dsn: str) -> Iterator[str]:
    """A Postgres schema private to the test, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:10]}"
    yield schema
    _drop_schema(postgres_dsn, schema)


@pytest.fixture
def ts_schema(timescaledb_dsn: str) -> Iterator[str]:
    """A schema private to the test in the lab's TimescaleDB database, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:10]}"
    yield schema
    _drop_schema(timescaledb_dsn, schema)
