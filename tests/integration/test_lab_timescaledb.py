"""PostgreSQL in the lab carries the real TimescaleDB extension."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

pytestmark = pytest.mark.integration


def test_timescaledb_creates_a_hypertable(timescaledb_dsn: str) -> None:
    async def scenario() -> tuple[str | None, int, int]:
        conn = await asyncpg.connect(timescaledb_dsn)
        try:
            table = f"smoke_{uuid.uuid4().hex[:8]}"
            await conn.execute(f"CREATE TABLE {table} (at timestamptz NOT NULL, device int, value double precision)")
            await conn.execute(f"SELECT create_hypertable('{table}', 'at')")
            await conn.execute(f"CREATE UNIQUE INDEX ON {table} (device, at)")
            await conn.executemany(
                f"INSERT INTO {table} VALUES (now() - make_interval(days => $1), 1, $1) "
                "ON CONFLICT (device, at) DO UPDATE SET value = excluded.value",
                [(d,) for d in range(0, 60, 3)],
            )
            extension = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
            hypertables = await conn.fetchval(
                "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = $1", table
            )
            chunks = await conn.fetchval(
                "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = $1", table
            )
            await conn.execute(f"DROP TABLE {table}")
            return extension, hypertables, chunks
        finally:
            await conn.close()

    extension, hypertables, chunks = asyncio.run(scenario())
    assert extension is not None, "timescaledb is not in pg_extension"
    assert hypertables == 1
    assert chunks > 1, "rows 60 days apart must land in several chunks of the hypertable"


def test_postgres_destination_database_is_separate(postgres_dsn: str, timescaledb_dsn: str) -> None:
    async def databases() -> tuple[str, str]:
        a = await asyncpg.connect(postgres_dsn)
        b = await asyncpg.connect(timescaledb_dsn)
        try:
            return await a.fetchval("SELECT current_database()"), await b.fetchval("SELECT current_database()")
        finally:
            await a.close()
            await b.close()

    pg, ts = asyncio.run(databases())
    assert pg != ts
