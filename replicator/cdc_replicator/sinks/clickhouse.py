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

from cdc_replicator.cql.types import CqlType
from cdc_replicator.endpoints import host_port
from cdc_replicator.events import ChangeEvent, Position
from cdc_replicator.sinks import chschema, writing
from cdc_replicator.sinks.base import DeadLetter, DestinationError, TableCache, TableOf, TypesOf, WriteResult
from cdc_replicator.sinks.chtypes import converter
from cdc_replicator.sinks.layout import LAYOUT_MARK, TableLayout, ValueColumn
from cdc_replicator.sinks.merge import Folder, Register, RowState, TableBatch, rank
from cdc_replicator.sinks.pgtypes import Convert
from cdc_replicator.sinks.postgres import layout_refusal
from cdc_replicator.tls import explain, https_context

log = logging.getLogger(__name__)
_NO_REGISTER = (0, 0, 0, "", None)


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
        self.static_ck = (None,) * len(layout.clustering)
        self.value_bytes = {c.name: chschema.needs_value_bytes(c.type) for c in layout.columns}


def _register(reg: Register, value: Any, with_bytes: bool) -> tuple[int, int, int, str, Any]:
    """``(write time, rank, expiry, value bytes, value)``: tuple order is ``Cells.resolveRegular``.
    The bytes travel as lowercase hex (clickhouse-connect takes only str inside tuples), which
    orders as the bytes do."""
    order = reg.order.hex() if with_bytes and reg.order is not None else ""
    return (reg.timestamp, rank(reg.order, reg.expires), reg.expires or 0, order, value)


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
            found = self.client.query(
                "SELECT comment FROM system.tables WHERE database = {d:String} AND name = {t:String}",
                parameters={"d": self.database, "t": name},
            ).result_rows
            if found and found[0][0] != LAYOUT_MARK:
                raise DestinationError(f"{self.name}: {layout_refusal(f'{self.database}.{name}', found[0][0])}")
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
        value_bytes = table.value_bytes

        def emit(key: tuple[Any, ...], clustering: tuple[Any, ...], row: RowState) -> None:
            record: list[Any] = [*key, *clustering]
            record.append((row.live or 0, int(row.live_expires is not None), row.live_expires or 0))
            record.append(row.deletion or 0)
            for column in value_columns:
                if column.storage == "simple":
                    cell = row.cells.get(column.name)
                    record.append(
                        _NO_REGISTER if cell is None else _register(cell, cell.value, value_bytes[column.name])
                    )
                elif column.storage == "elements":
                    elements = row.elements.get(column.name)
                    record.append(0 if elements is None or elements.deletion is None else elements.deletion)
                    if elements is not None:
                        for ekey, reg in elements.cells.items():
                            value = None if reg.value is None else json.dumps(reg.value, ensure_ascii=False)
                            out["elements"].append([*key, column.name, ekey, _register(reg, value, True)])
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
            emit((*key[:pk_width], 0, key[pk_width]), row.clustering, row)
        for key, row in batch.statics.items():
            emit((*key, 1, b""), table.static_ck, row)
        for key, stamp in batch.partitions.items():
            out["partitions"].append([*key, stamp])
        for key, r in batch.ranges.items():
            out["ranges"].append([*key, r.deletion])
        return out

    def _write_sync(
        self, events: Sequence[ChangeEvent], table_of: TableOf, upto: Position, rejected: Sequence[DeadLetter]
    ) -> WriteResult:
        result = WriteResult(dead=list(rejected))
        grouped = writing.group_by_table(events, self._tables, table_of, result)
        first = min((e.position for e in events), default=upto)
        token_base = f"{self.pipeline}/{self.node}/{first}-{upto}/{len(events)}"
        settings = {"async_insert": 0}
        for entry in grouped:
            table = entry.table
            self._ensure(table)
            batch = writing.fold(table, entry.events, result)
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
            writing.count(result, batch)
        if result.dead:
            letters = [writing.dead_letter_record(d) for d in result.dead]
            self.client.insert(
                "cdc_dead_letters",
                [
                    [self.pipeline, self.node, self.name, r.keyspace, r.table, r.position or "", r.event or "", r.error]
                    for r in letters
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
