"""Sinks from the config's destinations (credentials from the environment, TLS from files)."""

from __future__ import annotations

from typing import Any

from cdc_replicator.contract.config import Destination
from cdc_replicator.sinks.base import Sink, TypesOf
from cdc_replicator.sinks.clickhouse import ClickHouseSink, connect, host_port, https_context
from cdc_replicator.sinks.postgres import PostgresSink
from cdc_replicator.sinks.timescale import TimescaleSink
from cdc_replicator.tls import client_context


def _host_port(endpoint: str, default_port: int) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit():
        return endpoint, default_port
    return host.strip("[]"), int(port)


def build_sink(destination: Destination, *, pipeline: str, node: str, types_of: TypesOf | None) -> Sink:
    user, password = destination.credentials.resolve() if destination.credentials else (None, None)
    targets = {t.table: t.target for t in destination.tables if t.target}
    if destination.type in ("postgres", "timescaledb"):
        host, port = _host_port(destination.endpoint, 5432)
        kwargs: dict[str, Any] = {"host": host, "port": port, "database": destination.database}
        if user is not None:
            kwargs["user"] = user
        if password is not None:
            kwargs["password"] = password
        context = client_context(destination.tls, f"{host}:{port}")
        if context is not None:
            kwargs["ssl"] = context
        common: dict[str, Any] = {
            "pipeline": pipeline,
            "node": node,
            "schema": destination.target_schema or "public",
            "targets": targets,
            "types_of": types_of,
            "connect_kwargs": kwargs,
        }
        if destination.type == "postgres":
            return PostgresSink(destination.name, None, **common)
        time_columns = {t.table: (t.time_column, t.chunk_interval) for t in destination.tables if t.time_column}
        return TimescaleSink(destination.name, None, time_columns=time_columns, **common)
    endpoint, database = destination.endpoint, destination.database
    context = https_context(endpoint, destination.tls)
    host, port = host_port(endpoint)
    return ClickHouseSink(
        destination.name,
        None,
        connect=lambda: connect(endpoint, database, user, password, context=context),
        database=destination.database,
        pipeline=pipeline,
        node=node,
        targets=targets,
        types_of=types_of,
        tls=None if context is None else (f"{host}:{port}", context),
    )
