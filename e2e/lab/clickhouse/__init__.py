"""ClickHouse in the lab: a real server over HTTP and TCP, and the embedded engine (chDB) beside it.

The server is ClickHouse 26.7's ``clickhouse local`` from npm's ``@chdb/lib-linux-x64-gnu``
(``install``), run as a process of its own (``launch``) with the lab's user and password
(``server``), on the lab's private ports. What the replicator's tests, the demo and the
benchmarks write to. ``chdb`` is the in-process engine, kept for ``chdb://`` destinations.
"""

from __future__ import annotations

from typing import Any

from e2e.lab.clickhouse import chdb
from e2e.lab.clickhouse.install import PACKAGE, VERSION, install, library
from e2e.lab.clickhouse.server import PASSWORD, USER, ClickHouseError, Server
from e2e.lab.layout import Layout

__all__ = [
    "PASSWORD",
    "USER",
    "ClickHouseError",
    "Server",
    "describe",
    "down",
    "install",
    "is_running",
    "lab_server",
    "private_server",
    "up",
]


def lab_server(layout: Layout) -> Server:
    """The lab's own server."""
    return Server(layout.root / "clickhouse" / "server", layout.ports.clickhouse_http,
                  layout.ports.clickhouse_tcp, library(layout))  # fmt: skip


def private_server(layout: Layout, name: str, http_port: int, tcp_port: int) -> Server:
    """A server of a test's own (not started), under the lab's directory; ``purge()`` removes it."""
    return Server(layout.root / "clickhouse" / "private" / name, http_port, tcp_port, install(layout))


def is_running(layout: Layout) -> bool:
    return lab_server(layout).is_running()


def up(layout: Layout) -> Server:
    install(layout)
    lab = lab_server(layout)
    if not lab.is_running():
        print(f"lab: starting ClickHouse on {lab.url}", flush=True)
    lab.start()
    return lab


def down(layout: Layout) -> None:
    if lab_server(layout).stop():
        print("lab: stopped ClickHouse", flush=True)


def describe(layout: Layout) -> dict[str, Any]:
    lab = lab_server(layout)
    report: dict[str, Any] = {"running": False}
    if lab.is_running():
        try:
            report = {"running": True, **lab.describe()}
        except (OSError, ClickHouseError) as exc:  # started, not answering (yet)
            report["error"] = f"{type(exc).__name__}: {exc}"
    report["package"] = f"{PACKAGE}@{VERSION}"
    report["chdb"] = chdb.describe(layout)
    return {"clickhouse": report}
