"""The ClickHouse sink: folded batches inserted into self-merging tables, by clickhouse-connect.

No transactions: each batch inserts its table states (each insert with a deduplication token
derived from the batch's source positions, so a retried insert is dropped by the engine),
then its offset. A crash in between replays the batch, and replaying converges (``chschema``).
``async_insert`` is set explicitly off: the offset must only be written once the data is.

The same code talks to the embedded engine (``chdb://PATH`` endpoints, the default in tests)
and to a server over HTTP(S) (``http://`` / ``https://`` endpoints).
"""

# ruff: noqa: S608 - identifiers quoted by chschema.q(); values travel as parameters
from __future__ import annotations

import asyncio
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from cdc_replicator.cql.jsonmap import event_to_json
from cdc_replicator.cql.types import CqlType
from cdc_replicator.endpoints import host_port
from cdc_replicator.events import ChangeEvent, Position
from cdc_replicator.sinks import chschema
from cdc_replicator.sinks.base import DeadLetter, DestinationError, TableCache, TableOf, TypesOf, WriteResult
from cdc_replicator.sinks.chtypes import converter, key_default
from cdc_replicator.sinks.layout import TableLayout, ValueColumn
from cdc_replicator.sinks.merge import Folder, RowState, TableBatch, rank
from cdc_replicator.sinks.pgtypes import Convert
from cdc_replicator.tls import explain, https_context

log = logging.getLogger(__name__)
_NO_REGISTER = (0, 0, 0, None)


def _convert(column: ValueColumn | None, cql: CqlType) -> Convert:
    del column
    return converter(cql)


HTTP_PORT, HTTPS_PORT = 8123, 8443
"""ClickHouse's own defaults for endpoints that name no port."""


def server(endpoint: str) -> tuple[str, int]:
    """``(host, port)`` an HTTP(S) endpoint points at."""
    return host_port(endpoint, HTTPS_PORT if endpoint.startswith("https://") else HTTP_PORT)


def _keep_pandas_out() -> None:
    """clickhouse-connect imports pandas (when installed: chDB depends on it) at the first insert,
    only to ask whether the rows are a DataFrame. This sink inserts lists, never DataFrames, so
    its lazy-import cache is told pandas is absent: about 55 MB less resident memory."""
    from clickhouse_connect.driver import options  # noqa: PLC0415

    namespace = vars(options)
    namespace.setdefault("pd", None)
    namespace.setdefault("pd_time_test", None)


def connect(
    endpoint: str,
    database: str,
    username: str | None = None,
    password: str | None = None,
    *,
    context: ssl.SSLContext | None = None,
) -> Any:
    """A clickhouse-connect client: ``chdb://PATH`` embedded, else an HTTP(S) URL.

    Over HTTPS the connection follows ``context`` (``tls.https_context``: CA, client certificate,
    minimum version; the default policy when None); a failed handshake raises a DestinationError
    naming the endpoint and why."""
    import clickhouse_connect  # noqa: PLC0415 - heavy import, only for ClickHouse destinations

    _keep_pandas_out()

    if endpoint.startswith("chdb:"):
        return clickhouse_connect.get_client(interface="chdb", dsn=endpoint)
    scheme = endpoint.partition("://")[0] if "://" in endpoint else "http"
    host, port = server(endpoint)
    kwargs: dict[str, Any] = {}
    if scheme == "https":
        from clickhouse_connect.driver.httputil import get_pool_manager  # noqa: PLC0415

        context = context or https_context(endpoint, None, HTTPS_PORT)
        assert context is not None
        # Our context carries the whole policy; urllib3 is only told whether to verify.
        kwargs["pool_mgr"] = get_pool_manager(ssl_context=context, verify=context.verify_mode != ssl.CERT_NONE)
    try:
        return clickhouse_connect.get_client(
            host=host,
            port=port,
            interface=scheme,
            username=username or "default",
            password=password or "",
            database=database,
            **kwargs,
        )
    except Exception as exc:  # clickhouse-connect wraps urllib3's errors in its own
        why = explain(exc, f"{host}:{port}", context)
        if why is None:
            raise
        raise DestinationError(why) from exc


_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _client_lock(client: Any) -> threading.Lock:
    """One lock per client object (a sink made without a client gets its own)."""
    if client is None:
        return threading.Lock()
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(id(client), threading.Lock())


class _Table:
    def __init__(self, layout: TableLayout) -> None:
        self.layout = layout
        self.folder = Folder(layout, _convert)
        self.tables = chschema.tables(layout)
        self.static_ck = tuple(key_default(c.type) for c in layout.clustering)


def _register(value: Any, timestamp: int, expires: int | None) -> tuple[int, int, int, Any]:
    return (timestamp, rank(value, expires), expires or 0, value)


class ClickHouseSink:
    def __init__(
        self,
        name: str,
        client: Any,
        *,
        database: str,
        pipeline: str,
        node: str,
        targets: dict[str, str] | None = None,
        types_of: TypesOf | None = None,
        connect: Callable[[], Any] | None = None,
        tls: tuple[str, ssl.SSLContext] | None = None,
    ) -> None:
        """``client`` may be None with ``connect`` given: the client is then made on ``start``,
        so a server down at start is retried like any other outage. ``tls`` (``host:port`` and
        the context) lets a TLS failure at any time, not only at connect, name its reason."""
        self.name = name
        self.client = client
        self._connect = connect
        self.database = database
        self.pipeline = pipeline
        self.node = node
        self.targets = targets or {}
        self.types_of = types_of
        self._tables = TableCache(_Table, self.targets, types_of)
        self._ready: set[tuple[Any, ...]] = set()
        self.tls = tls
        self._lock = _client_lock(client)
        """chDB sessions are not thread-safe (and sinks may share one); HTTP clients are, but cheap to serialize."""

    async def _run(self, fn: Any, *args: Any) -> Any:
        def locked() -> Any:
            with self._lock:
                return fn(*args)

        try:
            return await asyncio.to_thread(locked)
        except DestinationError:
            raise
        except Exception as exc:  # clickhouse-connect raises its own and driver-specific errors
            # A handshake can fail mid-run too (a pooled connection renewed against a rotated
            # certificate): say so as at connect, "TLS to host:port failed: <reason>".
            why = explain(exc, *self.tls) if self.tls is not None else None
            raise DestinationError(f"{self.name}: {why or f'{type(exc).__name__}: {exc}'}") from exc

    async def start(self) -> None:
        def create() -> None:
            if self.client is None:
                if self._connect is None:
                    raise DestinationError(f"{self.name}: no client")
                self.client = self._connect()
            for statement in chschema.infrastructure(self.database):
                self.client.command(statement)

        await self._run(create)

    async def close(self) -> None:
        return None

    async def ping(self) -> float:
        begin = time.monotonic()
        await self._run(self.client.command, "SELECT 1")
        return time.monotonic() - begin

    async def committed(self) -> Position | None:
        def read() -> Position | None:
            result = self.client.query(
                f"SELECT max(position) FROM {chschema.q(self.database)}.cdc_offsets "
                "WHERE pipeline = {p:String} AND node = {n:String} AND destination = {d:String}",
                parameters={"p": self.pipeline, "n": self.node, "d": self.name},
            )
            rows = result.result_rows
            if not rows or rows[0][0] is None or tuple(rows[0][0]) == (0, 0):
                return None
            segment, position = rows[0][0]
            return Position(int(segment), int(position))

        result: Position | None = await self._run(read)
        return result

    def _ensure(self, table: _Table) -> None:
        layout = table.layout
        marker = (layout.target, tuple((k, tuple(v[0])) for k, v in sorted(table.tables.items())))
        if marker in self._ready:
            return
        d = chschema.q(self.database)
        for name, (columns, order) in table.tables.items():
            self.client.command(chschema.create_table(self.database, name, columns, order))
            existing = {
                row[0]: row[1]
                for row in self.client.query(
                    "SELECT name, type FROM system.columns WHERE database = {d:String} AND table = {t:String}",
                    parameters={"d": self.database, "t": name},
                ).result_rows
            }
            for column, sql_type in columns:
                if column not in existing:
                    self.client.command(
                        f"ALTER TABLE {d}.{chschema.q(name)} ADD COLUMN IF NOT EXISTS {chschema.q(column)} {sql_type}"
                    )
                    log.info("schema change: added %s.%s.%s (%s)", self.database, name, column, sql_type)
        for statement in chschema.view_statements(self.database, layout):
            self.client.command(statement)
        self._ready.add(marker)

    def _rows(self, table: _Table, batch: TableBatch) -> dict[str, list[list[Any]]]:
        layout = table.layout
        pk_width = len(layout.partition_key)
        out: dict[str, list[list[Any]]] = {"rows": [], "elements": [], "counters": [], "partitions": [], "ranges": []}
        value_columns = layout.columns

        def emit(key: tuple[Any, ...], row: RowState) -> None:
            record: list[Any] = [*key, (row.live or 0, int(row.live_expires is not None), row.live_expires or 0)]
            record.append(row.deletion or 0)
            for column in value_columns:
                if column.storage == "simple":
                    cell = row.cells.get(column.name)
                    record.append(_NO_REGISTER if cell is None else _register(cell.value, cell.timestamp, cell.expires))
                elif column.storage == "elements":
                    elements = row.elements.get(column.name)
                    record.append(0 if elements is None or elements.deletion is None else elements.deletion)
                    if elements is not None:
                        for ekey, reg in elements.cells.items():
                            value = None if reg.value is None else json.dumps(reg.value, ensure_ascii=False)
                            out["elements"].append(
                                [*key, column.name, ekey, _register(value, reg.timestamp, reg.expires)]
                            )
            out["rows"].append(record)
            for name, shards in row.counters.items():
                for ident, (clock, total) in shards.items():
                    out["counters"].append([*key, name, ident, (clock, total)])
            # Beside the replica shards, two pseudo-shards per counter column (chschema.COUNTER_TIME
            # and COUNTER_DELETION) carry its newest write time and its tombstone, as (time, 0).
            for name, stamp in row.counter_times.items():
                out["counters"].append([*key, name, chschema.COUNTER_TIME, (stamp, 0)])
            for name, stamp in row.counter_deletions.items():
                out["counters"].append([*key, name, chschema.COUNTER_DELETION, (stamp, 0)])

        for key, row in batch.rows.items():
            emit((*key[:pk_width], 0, *key[pk_width:]), row)
        for key, row in batch.statics.items():
            emit((*key, 1, *table.static_ck), row)
        for key, stamp in batch.partitions.items():
            out["partitions"].append([*key, stamp])
        width = len(layout.clustering)
        defaults = list(table.static_ck)
        for key, r in batch.ranges.items():
            start = list(r.start) + defaults[len(r.start) :]
            end = list(r.end) + defaults[len(r.end) :]
            out["ranges"].append(
                [*key, *start, len(r.start), int(r.start_inclusive), *end, len(r.end), int(r.end_inclusive), r.deletion]
            )
        del width
        return out

    def _write_sync(
        self, events: Sequence[ChangeEvent], table_of: TableOf, upto: Position, rejected: Sequence[DeadLetter]
    ) -> WriteResult:
        result = WriteResult(dead=list(rejected))
        by_table: dict[int, tuple[_Table, list[ChangeEvent]]] = {}
        for event in events:
            table = self._tables.get(event, table_of)
            if table is None:
                result.dead.append(
                    DeadLetter(event, "table unknown to the schema registry", event.keyspace, event.table)
                )
                continue
            by_table.setdefault(id(table), (table, []))[1].append(event)
        first = min((e.position for e in events), default=upto)
        token_base = f"{self.pipeline}/{self.node}/{first}-{upto}/{len(events)}"
        settings = {"async_insert": 0}
        for table, table_events in by_table.values():
            self._ensure(table)
            batch = TableBatch(table.layout)
            for event in table_events:
                try:
                    table.folder.fold(batch, event)
                except (ValueError, TypeError, OverflowError) as exc:
                    result.dead.append(
                        DeadLetter(event, f"value not representable: {exc}", event.keyspace, event.table)
                    )
            if len(result.dead):
                # Refold without the refused events: a failed fold may have left partial state.
                refused = {id(d.event) for d in result.dead}
                batch = TableBatch(table.layout)
                for event in table_events:
                    if id(event) not in refused:
                        table.folder.fold(batch, event)
            for kind, records in self._rows(table, batch).items():
                if not records:
                    continue
                name = f"{table.layout.target}__{kind}"
                columns = [n for n, _ in table.tables[name][0]]
                self.client.insert(
                    name,
                    records,
                    column_names=columns,
                    database=self.database,
                    settings={**settings, "insert_deduplication_token": f"{token_base}/{name}"},
                )
            result.applied += batch.events
            label = f"{table.layout.keyspace}.{table.layout.table}"
            result.per_table[label] = result.per_table.get(label, 0) + batch.events
            result.max_write_time = max(result.max_write_time, batch.max_timestamp)
        if result.dead:
            self.client.insert(
                "cdc_dead_letters",
                [
                    [
                        self.pipeline,
                        self.node,
                        self.name,
                        d.keyspace,
                        d.table,
                        "" if d.event is None else f"{d.event.position}#{d.event.index}",
                        "" if d.event is None else json.dumps(event_to_json(d.event)),
                        d.error,
                    ]
                    for d in result.dead
                ],
                column_names=["pipeline", "node", "destination", "keyspace", "table", "position", "event", "error"],
                database=self.database,
                settings={**settings, "insert_deduplication_token": f"{token_base}/dead"},
            )
        self.client.insert(
            "cdc_offsets",
            [[self.pipeline, self.node, self.name, (upto.segment_id, upto.position)]],
            column_names=["pipeline", "node", "destination", "position"],
            database=self.database,
            settings=settings,
        )
        return result

    async def write(
        self,
        events: Sequence[ChangeEvent],
        table_of: TableOf,
        upto: Position,
        rejected: Sequence[DeadLetter] = (),
    ) -> WriteResult:
        result: WriteResult = await self._run(self._write_sync, events, table_of, upto, rejected)
        return result
