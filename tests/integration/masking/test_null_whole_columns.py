"""``null`` over a whole counter, list or UDT keeps the rows those columns alone keep alive, in
Postgres, TimescaleDB and ClickHouse, and shows NULL; a nulled set is left out, with a warning.

Rows are written by ``UPDATE`` only (no row marker) and counter tables never have one, so a row
exists in Cassandra only through its cells. Each destination must show exactly Cassandra's rows,
with the nulled columns NULL, and none of the nulled values anywhere (history included).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cdc_replicator.schema.registry import SchemaRegistry

from tests.integration.commitlog.helpers import run, start_position, unique_keyspace
from tests.integration.masking import harness, pii
from tests.integration.replicator.process import Replicator, chdb_records, free_port, wait_until, write_config

pytestmark = pytest.mark.integration

SECRETS = ("secret-item-7", "221B Baker Street", "secret-tag-9")


def test_nulled_counters_lists_and_udts_keep_their_rows_and_show_null(
    tmp_path: Path, cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str,
    postgres_dsn: str, timescaledb_dsn: str, pg_schema: str,
) -> None:  # fmt: skip
    ks = unique_keyspace("mask_nullwhole")
    run(cql_session, f"CREATE KEYSPACE {ks} WITH replication = {replication}")
    run(cql_session, f"CREATE TYPE {ks}.address (street text, zip text)")
    run(cql_session, f"CREATE TABLE {ks}.c (id int PRIMARY KEY, visits counter, clicks counter) WITH cdc = true")
    run(
        cql_session,
        f"CREATE TABLE {ks}.l (id int PRIMARY KEY, items list<text>, home address, tags set<text>, n int) "
        "WITH cdc = true",
    )
    start = start_position(cdc_raw)
    run(cql_session, f"UPDATE {ks}.c SET visits = visits + 1 WHERE id = 1")  # alive only through visits
    run(cql_session, f"UPDATE {ks}.c SET visits = visits + 2, clicks = clicks + 1 WHERE id = 2")
    run(cql_session, f"UPDATE {ks}.c SET visits = visits + 5 WHERE id = 3")
    run(cql_session, f"DELETE visits FROM {ks}.c WHERE id = 3")  # a counter tombstone: row 3 is gone
    run(cql_session, f"UPDATE {ks}.l SET items = items + ['{SECRETS[0]}'] WHERE id = 1")
    run(cql_session, f"UPDATE {ks}.l SET home.street = '{SECRETS[1]}' WHERE id = 2")
    run(cql_session, f"UPDATE {ks}.l SET items = items + ['x'] WHERE id = 3")
    run(cql_session, f"DELETE items FROM {ks}.l WHERE id = 3")  # row 3 is gone
    run(cql_session, f"UPDATE {ks}.l SET tags = tags + {{'{SECRETS[2]}'}} WHERE id = 4")  # only a set: left out
    run(cql_session, f"UPDATE {ks}.l SET tags = tags + {{'t'}}, n = 5 WHERE id = 5")
    end = harness.end_of(cdc_raw, registry, ks, start)

    dests, env = harness.destinations(tmp_path, pg_schema, postgres_dsn, timescaledb_dsn, clickhouse=True)
    rules = [pii.rule(name, name, "null", "PII") for name in ("visits", "items", "home", "tags")]
    config = harness.config(tmp_path, cdc_raw, ks, free_port(), dests, {"policies": [{"name": "p", "rules": rules}]})
    replicator = Replicator(write_config(tmp_path / "config.yaml", **config), env, tmp_path)
    replicator.start()
    try:
        wait_until(
            lambda: harness.caught_up(tmp_path / "checkpoint.json", end, ["pg", "ts", "ch"]),
            120,
            "all",
            replicator.logs,
        )
    finally:
        assert replicator.stop() == 0
    logs = replicator.logs()
    assert f"masking rule 'tags' nulls {ks}.l.tags, a set or map" in logs

    want_c = [{"id": 1, "visits": None, "clicks": None}, {"id": 2, "visits": None, "clicks": 1}]
    want_l = [
        {"id": 1, "items": None, "home": None, "tags": None, "n": None},
        {"id": 2, "items": None, "home": None, "tags": None, "n": None},
        {"id": 5, "items": None, "home": None, "tags": None, "n": 5},
    ]

    async def pg(dsn: str, sql: str) -> list[dict[str, Any]]:
        conn = await asyncpg.connect(dsn)
        try:
            return [dict(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    def pg_view(table: str) -> list[dict[str, Any]]:
        return asyncio.run(pg(postgres_dsn, f'SELECT * FROM "{pg_schema}"."{ks}_{table}" ORDER BY id'))

    def ch_view(table: str) -> list[dict[str, Any]]:
        return sorted(chdb_records(tmp_path / "chdb", pg_schema, f"{ks}_{table}"), key=lambda r: r["id"])

    assert pg_view("c") == want_c
    assert pg_view("l") == want_l
    assert ch_view("c") == want_c
    assert ch_view("l") == want_l

    # TimescaleDB keeps a history: every change is there, with the nulled values null.
    history = asyncio.run(
        pg(timescaledb_dsn, f'SELECT _change::text AS change FROM "{pg_schema}"."{ks}_l__history"')
    ) + asyncio.run(pg(timescaledb_dsn, f'SELECT _change::text AS change FROM "{pg_schema}"."{ks}_c__history"'))
    assert len(history) == 10
    dumped = "\n".join(row["change"] for row in history)
    assert not [secret for secret in SECRETS if secret in dumped]
    for change in (json.loads(row["change"]) for row in history):
        assert [c.get("value") for n, c in change.get("cells", {}).items() if n == "visits"] in ([], [None])
        for name, collection in change.get("collections", {}).items():
            if name in ("items", "home"):  # their element keys stay (timeuuids, field names), values go
                assert [e.get("value") for e in collection["elements"]] in ([], [None])

    # Nor anywhere in Postgres's or ClickHouse's base tables.
    for table in ("l__rows", "c__rows"):
        rows = asyncio.run(pg(postgres_dsn, f'SELECT t::text AS t FROM "{pg_schema}"."{ks}_{table}" t'))
        assert not [s for s in SECRETS if any(s in r["t"] for r in rows)]
    for table in ("l__rows", "l__elements"):
        records = chdb_records(tmp_path / "chdb", pg_schema, f"{ks}_{table}")
        assert not [s for s in SECRETS if s in repr(records)]
