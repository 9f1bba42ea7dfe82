"""The TimescaleDB sink: the Postgres sink with hypertables.

Every unique index of a hypertable must include its time column, so:

- a table whose primary key holds the timestamp column the pipeline names (``timeColumn``)
  is laid out as in Postgres, with ``<target>__rows`` a hypertable partitioned on that
  column (its primary key includes it) and upserted the same way: the view is current state;
- any other table becomes ``<target>__history``: an append-only hypertable partitioned by
  Cassandra write time, one row per change (``sinks.history``), unique on (key, write time,
  operation, identity hash); a change that arrives again (a replay, another replica, another
  replicator) is merged into its row with ``cdc_history_merge``, so it adds nothing, even when
  the two deliveries were decoded before and after an ``ALTER TABLE … DROP``.
"""

# ruff: noqa: S608 - SQL is built from identifiers quoted by q(); values always travel as parameters
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import asyncpg

from cdc_replicator.events import ChangeEvent
from cdc_replicator.sinks import history
from cdc_replicator.sinks.base import WriteResult
from cdc_replicator.sinks.layout import TableLayout, stored
from cdc_replicator.sinks.pgschema import q, tbl
from cdc_replicator.sinks.postgres import PgTable, PostgresSink

log = logging.getLogger(__name__)


class TimescaleSink(PostgresSink):
    def __init__(self, *args: Any, time_columns: dict[str, tuple[str, str | None]] | None = None, **kwargs: Any):
        """``time_columns``: ``keyspace.table`` -> (time column, chunk interval or None)."""
        super().__init__(*args, **kwargs)
        self.time_columns = time_columns or {}

    def _time_column(self, layout: TableLayout) -> tuple[str, str | None] | None:
        found = self.time_columns.get(f"{layout.keyspace}.{layout.table}")
        if found is None:
            return None
        keys = {c.name: c for c in layout.key_columns}
        column = keys.get(found[0])
        if column is None or column.type.kind != "timestamp":
            return None  # not a timestamp in the key: keep the history (logged at layout time)
        return found

    def _table(self, layout: TableLayout) -> PgTable:
        """Rows are keyed by the clustering's comparable form; the hypertable's time column, when a
        clustering column, joins the primary key (every unique index of a hypertable needs it)."""
        found = self._time_column(layout)
        if found is None or found[0] not in {c.name for c in layout.clustering}:
            return PgTable(layout)
        return PgTable(layout, (found[0],))

    async def _created(self, conn: asyncpg.Connection, base: str, layout: TableLayout) -> None:
        found = self._time_column(layout)
        if found is None or not base.endswith("__rows"):
            return
        column, interval = found
        await conn.execute(
            "SELECT create_hypertable($1::regclass, by_range($2::name, $3::text::interval))",
            tbl(self.schema, base),
            stored(column),
            interval or "7 days",
        )

    async def _ensure(self, conn: asyncpg.Connection, table: PgTable) -> None:
        layout = table.layout
        if self._time_column(layout) is not None:
            await super()._ensure(conn, table)
            return
        name = f"{layout.target}__history"
        marker = (name, ())
        if marker in self._ready:
            return
        if self.time_columns.get(f"{layout.keyspace}.{layout.table}") is not None:
            log.warning("%s: timeColumn is not a timestamp column of the primary key; keeping history", name)
        async with conn.transaction():
            await self._merge_function(conn)
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"cdc-ddl:{self.schema}.{name}")
            exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", tbl(self.schema, name))
            if not exists:
                await conn.execute(
                    f"CREATE TABLE {tbl(self.schema, name)} (_write_time timestamptz NOT NULL, _ts bigint NOT NULL, "
                    "_key jsonb NOT NULL, _op text NOT NULL, _change jsonb NOT NULL, _hash text NOT NULL, "
                    "_position text NOT NULL)"
                )
                await conn.execute(
                    "SELECT create_hypertable($1::regclass, by_range('_write_time', '7 days'::interval))",
                    tbl(self.schema, name),
                )
                await conn.execute(
                    f"CREATE UNIQUE INDEX {q(name + '_change')} ON {tbl(self.schema, name)} "
                    "(_key, _ts, _op, _hash, _write_time)"
                )
                log.info("created hypertable %s.%s", self.schema, name)
        self._ready.add(marker)

    async def _merge_function(self, conn: asyncpg.Connection) -> None:
        """``cdc_history_merge(jsonb, jsonb)`` and its aggregate in the target schema, once (under a
        lock: replicators of other nodes may start at the same moment)."""
        function = f"{q(self.schema)}.{q(history.MERGE_FUNCTION)}"
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"cdc-ddl:{self.schema}.merge")
        if await conn.fetchval("SELECT to_regprocedure($1) IS NOT NULL", f"{function}(jsonb, jsonb)"):
            return
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {q(self.schema)}")
        # STRICT: the aggregate's first value becomes its state, and a NULL never erases a change.
        await conn.execute(
            f"CREATE FUNCTION {function}(a jsonb, b jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE STRICT "
            f"AS $body${history.MERGE_FUNCTION_BODY}$body$"
        )
        await conn.execute(f"CREATE AGGREGATE {function} (jsonb) (SFUNC = {function}, STYPE = jsonb)")

    async def _apply(
        self, conn: asyncpg.Connection, table: PgTable, events: Sequence[ChangeEvent], result: WriteResult
    ) -> None:
        layout = table.layout
        if self._time_column(layout) is not None:
            await super()._apply(conn, table, events, result)
            return
        try:
            await self._append_history(conn, table, events, result)
        except (asyncpg.DataError, ValueError, TypeError, OverflowError) as exc:
            # A value the history cannot hold (jsonb refuses a NUL in text, say) must not stall the
            # destination: the event is isolated and dead-lettered as in the other tables.
            await self._split_refused(conn, table, events, result, exc)

    async def _append_history(
        self, conn: asyncpg.Connection, table: PgTable, events: Sequence[ChangeEvent], result: WriteResult
    ) -> None:
        """One history row per change, in a savepoint; a replayed change merges into its row."""
        layout = table.layout
        hidden = frozenset(c.name for c in layout.columns if c.hidden)
        rows = [history.history_row(event, hidden) for event in events]
        name = f"{layout.target}__history"
        stage = await self._stage(
            conn,
            name,
            [
                ("_write_time", "timestamptz"),
                ("_ts", "bigint"),
                ("_key", "jsonb"),
                ("_op", "text"),
                ("_change", "jsonb"),
                ("_hash", "text"),
                ("_position", "text"),
            ],
        )
        async with conn.transaction():
            await conn.copy_records_to_table(stage, records=rows, columns=list(history.COLUMNS))
            merge = f"{q(self.schema)}.{q(history.MERGE_FUNCTION)}"
            # One row per change. ON CONFLICT may touch a row only once per statement, so a batch
            # holding one change twice (rare: the same key and write time in two mutations) is
            # merged within itself first; the sort and aggregate that takes are skipped otherwise.
            identities = {(r[0], r[1], r[2], r[3], r[5]) for r in rows}
            source = (
                f"SELECT * FROM {q(stage)}"
                if len(identities) == len(rows)
                else f"SELECT _write_time, _ts, _key, _op, {merge}(_change ORDER BY _change::text), _hash, "
                f"min(_position) FROM {q(stage)} GROUP BY _write_time, _ts, _key, _op, _hash"
            )
            await conn.execute(
                f"INSERT INTO {tbl(self.schema, name)} AS h (_write_time, _ts, _key, _op, _change, _hash, _position) "
                f"{source} ON CONFLICT (_key, _ts, _op, _hash, _write_time) DO UPDATE "
                f"SET _change = {merge}(h._change, EXCLUDED._change) "
                f"WHERE h._change IS DISTINCT FROM {merge}(h._change, EXCLUDED._change)"
            )
            await conn.execute(f"TRUNCATE {q(stage)}")
        result.applied += len(events)
        label = f"{layout.keyspace}.{layout.table}"
        result.per_table[label] = result.per_table.get(label, 0) + len(events)
        result.max_write_time = max([result.max_write_time, *(r[1] for r in rows)])
