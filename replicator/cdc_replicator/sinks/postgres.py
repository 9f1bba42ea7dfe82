"""The Postgres sink: folded batches COPYed into temp stages, merged by one statement per table.

One transaction per batch: the stages are filled with ``COPY`` (binary), each base table is
merged with ``INSERT … SELECT … ON CONFLICT DO UPDATE`` comparing write times per column
(``pgschema``), dead letters are inserted, and the node's offset moves forward, all at once.
A value Postgres refuses (a NUL in text, a number out of range) aborts only a savepoint:
the batch is split until the offending event is alone, and that event goes to
``cdc_dead_letters`` with the error. Nothing is silently dropped.
"""

# ruff: noqa: S608 - SQL is built from identifiers quoted by q(); values always travel as parameters
from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from cdc_replicator.cql.types import CqlType
from cdc_replicator.events import ChangeEvent, Position
from cdc_replicator.sinks import pgschema, writing
from cdc_replicator.sinks.base import DeadLetter, DestinationError, TableCache, TableOf, TypesOf, WriteResult
from cdc_replicator.sinks.layout import LAYOUT_MARK, TableLayout, ValueColumn
from cdc_replicator.sinks.merge import Folder, RowState, TableBatch
from cdc_replicator.sinks.pgschema import q, tbl
from cdc_replicator.sinks.pgtypes import Convert, converter, pg_type
from cdc_replicator.tls import explain

log = logging.getLogger(__name__)

_CONFLICT_RETRIES = 5
_FORMATTED = {"timestamptz": "timestamp with time zone", 'text COLLATE "C"': "text"}


class SchemaMismatchError(Exception):
    """A destination table differs from what the layout needs in a way we do not change."""


def layout_refusal(table: str, found: str | None) -> str:
    """Why a table made by other layout rules is not written, and what to do (both sinks)."""
    made_by = f"marked {found!r}" if found else "unmarked (made before layout versions: typed-value order)"
    return (
        f"{table} was created with other layout rules ({made_by}; this replicator writes {LAYOUT_MARK!r}: "
        "Cassandra's byte orders for keys, range bounds and ties). Writing into it would mix the two, so this "
        "destination stops here. Drop the table's base tables and view (a replay or snapshot refills them), or "
        "point the destination at a new schema/database, then restart."
    )


def _convert(column: ValueColumn | None, cql: CqlType) -> Convert:
    del column
    return converter(cql)


def _row_record(layout_columns: tuple[ValueColumn, ...], head: list[Any], row: RowState) -> list[Any]:
    record: list[Any] = [*head, row.live, row.live_expires, row.deletion]
    for column in layout_columns:
        name = column.name
        if column.storage == "simple":
            cell = row.cells.get(name)
            record.extend((None, None, None) if cell is None else (cell.value, cell.timestamp, cell.expires))
            if pgschema.needs_value_bytes(column.type):
                record.append(None if cell is None else cell.order)
        elif column.storage == "elements":
            elements = row.elements.get(name)
            if elements is None:
                record.extend((None, None))
            else:
                record.extend((elements.to_json() if elements.cells else None, elements.deletion))
        else:
            shards = row.counters.get(name)
            record.append(None if not shards else json.dumps({k: list(v) for k, v in shards.items()}))
            record.extend((row.counter_times.get(name), row.counter_deletions.get(name)))
    return record


class PgTable:
    """What the sink knows about one destination table: its layout and folder; ``extra_key``:
    Cassandra key columns added to the rows table's primary key (TimescaleDB's time column)."""

    def __init__(self, layout: TableLayout, extra_key: tuple[str, ...] = ()) -> None:
        self.layout = layout
        self.extra_key = extra_key
        self.folder = Folder(layout, _convert)
        self.bases = pgschema.base_tables(layout, extra_key)


class PostgresSink:
    """Writes one node's events into a Postgres schema; also the base of the TimescaleDB sink."""

    def __init__(
        self,
        name: str,
        dsn: str | None,
        *,
        pipeline: str,
        node: str,
        schema: str = "public",
        targets: dict[str, str] | None = None,
        types_of: TypesOf | None = None,
        connect_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.dsn = dsn
        self.pipeline = pipeline
        self.node = node
        self.schema = schema
        self.targets = targets or {}
        self.types_of = types_of
        self.connect_kwargs = connect_kwargs or {}
        self._conn: asyncpg.Connection | None = None
        self._tables = TableCache(self._table, self.targets, types_of)
        self._ready: set[tuple[str, tuple[Any, ...]]] = set()
        """(target, layout) pairs whose DDL this process has applied."""
        self._stages: set[str] = set()

    def _table(self, layout: TableLayout) -> PgTable:
        return PgTable(layout)

    # -- connection ---------------------------------------------------------------------------

    async def _connection(self) -> asyncpg.Connection:
        conn = self._conn
        if conn is not None and not conn.is_closed():
            return conn
        try:
            conn = await asyncpg.connect(self.dsn, timeout=10, **self.connect_kwargs)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            why = explain(exc, self._endpoint(), _context(self.connect_kwargs.get("ssl")))
            raise DestinationError(f"{self.name}: cannot connect: {why or exc}") from exc
        self._conn = conn
        self._stages.clear()
        self._ready.clear()
        return conn

    def _endpoint(self) -> str:
        kwargs = self.connect_kwargs
        if "host" in kwargs:
            return f"{kwargs['host']}:{kwargs.get('port', 5432)}"
        return urlsplit(self.dsn or "").netloc.rpartition("@")[2] or "the server"  # never the password

    async def start(self) -> None:
        conn = await self._connection()
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"cdc-infra:{self.schema}")
                for statement in pgschema.infrastructure(self.schema):
                    await conn.execute(statement)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise DestinationError(f"{self.name}: {exc}") from exc

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def ping(self) -> float:
        begin = time.monotonic()
        conn = await self._connection()
        try:
            await conn.fetchval("SELECT 1", timeout=5)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            await self._drop()
            raise DestinationError(f"{self.name}: {exc}") from exc
        return time.monotonic() - begin

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def committed(self) -> Position | None:
        conn = await self._connection()
        try:
            row = await conn.fetchrow(
                f"SELECT segment_id, position FROM {tbl(self.schema, 'cdc_offsets')} "
                "WHERE pipeline = $1 AND node = $2 AND destination = $3",
                self.pipeline,
                self.node,
                self.name,
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            await self._drop()
            raise DestinationError(f"{self.name}: {exc}") from exc
        return None if row is None else Position(row["segment_id"], row["position"])

    # -- schema -------------------------------------------------------------------------------

    async def _ensure(self, conn: asyncpg.Connection, table: PgTable) -> None:
        """Create or extend the base tables and recreate the view (under a lock: replicators share them)."""
        layout = table.layout
        marker = (layout.target, tuple(sorted((k, tuple(v[0])) for k, v in table.bases.items())))
        if marker in self._ready:
            return
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"cdc-ddl:{self.schema}.{layout.target}")
            for base, (columns, key) in table.bases.items():
                existing = {
                    r["attname"]: r["type"]
                    for r in await conn.fetch(
                        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a "
                        "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
                        tbl(self.schema, base),
                    )
                }
                if not existing:
                    await conn.execute(pgschema.create_table(self.schema, base, columns, key))
                    await conn.execute(f"COMMENT ON TABLE {tbl(self.schema, base)} IS '{LAYOUT_MARK}'")
                    await self._created(conn, base, layout)
                    log.info("created %s.%s", self.schema, base)
                    continue
                mark = await conn.fetchval(
                    "SELECT obj_description(to_regclass($1), 'pg_class')", tbl(self.schema, base)
                )
                if mark != LAYOUT_MARK:
                    raise DestinationError(f"{self.name}: {layout_refusal(f'{self.schema}.{base}', mark)}")
                for name, sql_type in columns:
                    found = existing.get(name)
                    wanted = _FORMATTED.get(sql_type, sql_type)
                    if found is None:
                        await conn.execute(f"ALTER TABLE {tbl(self.schema, base)} ADD COLUMN {q(name)} {sql_type}")
                        log.info("schema change: added %s.%s.%s (%s)", self.schema, base, name, sql_type)
                    elif found != wanted:
                        raise SchemaMismatchError(f"{self.schema}.{base}.{name} is {found}, needs {wanted}")
            for statement in pgschema.view_statements(self.schema, layout):
                await conn.execute(statement)
        self._ready.add(marker)

    async def _created(self, conn: asyncpg.Connection, base: str, layout: TableLayout) -> None:
        """Called once a base table is created (TimescaleDB turns some into hypertables)."""

    async def _stage(self, conn: asyncpg.Connection, base: str, columns: list[tuple[str, str]]) -> str:
        stage = pgschema.stage_name(self.schema, base, columns)
        if stage not in self._stages:
            cols = ", ".join(f"{q(n)} {t}" for n, t in columns)
            await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {q(stage)} ({cols}) ON COMMIT DELETE ROWS")
            self._stages.add(stage)
        return stage

    # -- writing ------------------------------------------------------------------------------

    async def _merge(self, conn: asyncpg.Connection, table: PgTable, batch: TableBatch) -> None:
        layout = table.layout
        parts: list[tuple[str, list[list[Any]]]] = []
        if batch.rows:
            regular = layout.regular
            parts.append(("rows", [_row_record(regular, [*k, *r.clustering], r) for k, r in batch.rows.items()]))
        if batch.statics:
            statics = layout.statics
            parts.append(("static", [_row_record(statics, list(k), r) for k, r in batch.statics.items()]))
        if batch.partitions:
            parts.append(("partitions", [[*k, t] for k, t in batch.partitions.items()]))
        if batch.ranges:
            parts.append(("ranges", [[*k, r.deletion] for k, r in batch.ranges.items()]))
        for kind, records in parts:
            base = f"{layout.target}__{kind}"
            columns, _ = table.bases[base]
            stage = await self._stage(conn, base, columns)
            await conn.copy_records_to_table(stage, records=records, columns=[n for n, _ in columns])
            await conn.execute(pgschema.merge_statement(self.schema, layout, kind, stage, table.extra_key))
            await conn.execute(f"TRUNCATE {q(stage)}")

    async def _apply(
        self, conn: asyncpg.Connection, table: PgTable, events: Sequence[ChangeEvent], result: WriteResult
    ) -> None:
        """Merge ``events`` of one table in a savepoint; split on a value Postgres refuses."""
        dead_before = len(result.dead)
        batch = writing.fold(table, events, result)
        try:
            async with conn.transaction():
                await self._merge(conn, table, batch)
        except asyncpg.DataError as exc:
            del result.dead[dead_before:]  # the halves fold again and find them again
            await self._split_refused(conn, table, events, result, exc)
            return
        writing.count(result, batch)

    async def _split_refused(
        self,
        conn: asyncpg.Connection,
        table: PgTable,
        events: Sequence[ChangeEvent],
        result: WriteResult,
        exc: Exception,
    ) -> None:
        """After ``exc`` rolled back the savepoint applying ``events``: dead-letter the event if it was
        alone, else apply each half on its own, until the values Postgres refuses are isolated."""
        self._stages.clear()  # temp stages created in the rolled-back savepoint are gone
        if len(events) == 1:
            event = events[0]
            result.dead.append(DeadLetter(event, f"{type(exc).__name__}: {exc}", event.keyspace, event.table))
            return
        half = len(events) // 2
        await self._apply(conn, table, events[:half], result)
        await self._apply(conn, table, events[half:], result)

    async def write(
        self,
        events: Sequence[ChangeEvent],
        table_of: TableOf,
        upto: Position,
        rejected: Sequence[DeadLetter] = (),
    ) -> WriteResult:
        for attempt in range(_CONFLICT_RETRIES):
            try:
                return await self._write(events, table_of, upto, rejected)
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                # Rolled back whole; another replicator's transaction won. Retrying is safe.
                if attempt + 1 == _CONFLICT_RETRIES:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    async def _write(
        self, events: Sequence[ChangeEvent], table_of: TableOf, upto: Position, rejected: Sequence[DeadLetter]
    ) -> WriteResult:
        result = WriteResult(dead=list(rejected))
        conn = await self._connection()
        grouped = writing.group_by_table(events, self._tables, table_of, result)
        try:
            broken: dict[int, str] = {}
            for entry in grouped:
                try:
                    await self._ensure(conn, entry.table)
                except SchemaMismatchError as exc:
                    broken[id(entry.table)] = str(exc)
                    log.error("destination %s: %s", self.name, exc)
            async with conn.transaction():
                for entry in grouped:
                    reason = broken.get(id(entry.table))
                    if reason is not None:
                        result.dead.extend(
                            DeadLetter(e, f"incompatible destination table: {reason}", e.keyspace, e.table)
                            for e in entry.events
                        )
                        continue
                    await self._apply(conn, entry.table, entry.events, result)
                if result.dead:
                    await self._dead_letters(conn, result.dead)
                await conn.execute(
                    f"INSERT INTO {tbl(self.schema, 'cdc_offsets')} AS o "
                    "(pipeline, node, destination, segment_id, position, events) VALUES ($1, $2, $3, $4, $5, $6) "
                    "ON CONFLICT (pipeline, node, destination) DO UPDATE SET segment_id = EXCLUDED.segment_id, "
                    "position = EXCLUDED.position, events = o.events + EXCLUDED.events, updated_at = now() "
                    "WHERE (o.segment_id, o.position) <= (EXCLUDED.segment_id, EXCLUDED.position)",
                    self.pipeline,
                    self.node,
                    self.name,
                    upto.segment_id,
                    upto.position,
                    result.applied,
                )
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
            self._stages.clear()
            raise
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            await self._drop()
            raise DestinationError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        return result

    async def _dead_letters(self, conn: asyncpg.Connection, dead: list[DeadLetter]) -> None:
        records = []
        for letter in dead:
            record = writing.dead_letter_record(letter, ensure_ascii=True)
            payload = record.event
            if payload is not None:
                # jsonb refuses \u0000 (often the very reason the event is here): keep it visible, escaped.
                payload = payload.replace("\\u0000", "\\\\u0000")
            records.append(
                (
                    self.pipeline,
                    self.node,
                    self.name,
                    record.keyspace,
                    record.table,
                    record.position,
                    payload,
                    record.error.replace("\x00", "\\x00"),
                )
            )
        await conn.executemany(
            f"INSERT INTO {tbl(self.schema, 'cdc_dead_letters')} "
            '(pipeline, node, destination, keyspace, "table", position, event, error) '
            "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)",
            records,
        )


def _context(value: Any) -> ssl.SSLContext | None:
    return value if isinstance(value, ssl.SSLContext) else None


def pg_column_type(cql: CqlType) -> str:
    """Re-exported for docs and tests: the Postgres type of a CQL column."""
    return pg_type(cql)
