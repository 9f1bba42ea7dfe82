"""Sinks from the config's destinations (credentials from the environment, TLS from files)."""

from __future__ import annotations

import ssl
from typing import Any

from cdc_replicator.contract.config import ConfigError, Destination
from cdc_replicator.endpoints import host_port
from cdc_replicator.sinks.base import Sink, TypesOf
from cdc_replicator.sinks.clickhouse import HTTPS_PORT, ClickHouseSink, connect, server
from cdc_replicator.sinks.postgres import PostgresSink
from cdc_replicator.sinks.timescale import TimescaleSink
from cdc_replicator.tls import client_context, https_context

POSTGRES_PORT = 5432


def build_sink(destination: Destination, *, pipeline: str, node: str, types_of: TypesOf | None) -> Sink:
    """The destination's sink (not yet connected). A malformed endpoint is a ``ConfigError`` naming
    the destination; an unloadable TLS file a ``TlsConfigError``."""
    user, password = destination.credentials.resolve() if destination.credentials else (None, None)
    targets = {t.table: t.target for t in destination.tables if t.target}
    if destination.type in ("postgres", "timescaledb"):
        try:
            host, port = host_port(destination.endpoint, POSTGRES_PORT)
        except ValueError as exc:
            raise ConfigError(f"destination {destination.name}: {exc}") from None
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
    tls: tuple[str, ssl.SSLContext] | None = None  # lets a handshake failing mid-run name its endpoint
    try:
        context = https_context(endpoint, destination.tls, HTTPS_PORT)
        if context is not None:
            host, port = server(endpoint)
            tls = (f"{host}:{port}", context)
    except ValueError as exc:
        raise ConfigError(f"destination {destination.name}: {exc}") from None
    return ClickHouseSink(
        destination.name,
        None,
        connect=lambda: connect(endpoint, database, user, password, context=context),
        database=destination.database,
        pipeline=pipeline,
        node=node,
        targets=targets,
        types_of=types_of,
        tls=tls,
    )
