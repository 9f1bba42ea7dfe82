"""A table created while the replicator runs, which the masking policy matches but cannot mask
(``partial`` on an int): the replicator must refuse rather than leak, and say so: it stops by
itself (never half-alive and "healthy"), names the rule and the column, writes none of the new
table's values anywhere, and a restart refuses to start with the same reason."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cdc_replicator.schema.registry import SchemaRegistry

from tests.integration.commitlog.helpers import run, start_position, unique_keyspace
from tests.integration.masking import harness, pii
from tests.integration.replicator.process import Replicator, free_port, wait_until, write_config

pytestmark = pytest.mark.integration


def test_table_the_policy_cannot_mask_stops_the_replicator_and_leaks_nothing(
    tmp_path: Path, cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str,
    postgres_dsn: str, pg_schema: str,
) -> None:  # fmt: skip
    keyspace = unique_keyspace("mask_midrun")
    run(cql_session, f"CREATE KEYSPACE {keyspace} WITH replication = {replication}")
    run(cql_session, f"CREATE TABLE {keyspace}.a (id int PRIMARY KEY, note text) WITH cdc = true")
    start = start_position(cdc_raw)
    run(cql_session, f"INSERT INTO {keyspace}.a (id, note) VALUES (1, 'first-secret-note')")
    end = harness.end_of(cdc_raw, registry, keyspace, start)
    dests, env = harness.destinations(tmp_path, pg_schema, postgres_dsn)
    masking = {"policies": [{"name": "p", "rules": [pii.rule("notes", "note*", "partial", keepLast=2)]}]}
    config = harness.config(tmp_path, cdc_raw, keyspace, free_port(), dests, masking)
    replicator = Replicator(write_config(tmp_path / "config.yaml", **config), env, tmp_path)
    replicator.start()
    try:
        wait_until(lambda: harness.caught_up(tmp_path / "checkpoint.json", end, ["pg"]), 120, "pg", replicator.logs)
        run(cql_session, f"CREATE TABLE {keyspace}.b (id int PRIMARY KEY, note_count int, body text) WITH cdc = true")
        run(cql_session, f"INSERT INTO {keyspace}.b (id, note_count, body) VALUES (7, 424242, 'second-secret-body')")
        code = replicator.wait(180)
    finally:
        if replicator.alive():
            replicator.stop()
    logs = replicator.logs()
    assert code == 1, logs
    reason = f"rule 'notes' (partial) cannot mask {keyspace}.b.note_count of type int"
    assert reason in logs
    assert "the reader stopped: PolicyError" in logs

    replicator.start()  # a restart refuses at once, with the same reason
    assert replicator.wait(120) == 2
    assert reason in replicator.logs()

    async def dump() -> str:
        conn = await asyncpg.connect(postgres_dsn)
        try:
            names = await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", pg_schema
            )
            texts = [
                await conn.fetchval(f'SELECT string_agg(t::text, \'|\') FROM "{pg_schema}"."{n["table_name"]}" t')
                for n in names
            ]
        finally:
            await conn.close()
        return "\n".join(t or "" for t in texts)

    everything = asyncio.run(dump()) + replicator.logs() + (tmp_path / "checkpoint.json").read_text()
    assert "(1,***************te)" in everything  # table a's row, masked, made it
    for raw in ("first-secret-note", "second-secret-body", "424242"):
        assert raw not in everything
