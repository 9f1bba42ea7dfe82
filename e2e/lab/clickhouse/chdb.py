"""The ClickHouse engine embedded: chDB, driven through clickhouse-connect's chdb interface.

The replicator still supports it (``chdb://PATH`` destinations, for a single replicator without
a server). No process to start: the lab only fixes the on-disk path and proves the engine loads.
chDB holds a lock on its path while a process has it open, so concurrent users need separate
paths: the DSN here is the shared default.
"""

from __future__ import annotations

from typing import Any

from e2e.lab.layout import Layout


def path(layout: Layout) -> str:
    return str(layout.service_dir("clickhouse") / "data")


def dsn(layout: Layout) -> str:
    return f"chdb://{path(layout)}"


def describe(layout: Layout) -> dict[str, Any]:
    import clickhouse_connect  # noqa: PLC0415 - loads the engine, only when describing

    client = clickhouse_connect.get_client(interface="chdb", dsn=f"chdb://{layout.root / 'clickhouse' / 'probe'}")
    try:
        version = client.server_version
    finally:
        client.close()
    return {"dsn": dsn(layout), "path": path(layout), "version": version, "interface": "chdb"}
