"""One PostgreSQL 15 server holding both relational destinations.

``cdc_postgres`` is the plain Postgres destination and ``cdc_timescale`` the TimescaleDB
one (the extension created in it). One server keeps the lab light on a 2-core machine;
the two destinations stay independent databases with their own offsets, exactly as two
servers would. TimescaleDB is the Apache-licensed build from Debian's source package,
compiled against this server by ``tools/build-timescaledb.sh``.
"""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path
from typing import Any

from e2e.lab import procs
from e2e.lab.errors import LabError
from e2e.lab.layout import POSTGRES_MAJOR, TIMESCALEDB_VERSION, Layout

SERVICE = "postgres"
BIN = Path(f"/usr/lib/postgresql/{POSTGRES_MAJOR}/bin")
USER = "cdc"
PASSWORD = "cdc-lab-password"  # noqa: S105 - a throwaway lab credential on loopback
DATABASES = {"postgres": "cdc_postgres", "timescaledb": "cdc_timescale"}


def _as_postgres(cmd: list[str | Path]) -> list[str | Path]:
    # The server refuses to run as root; the Debian package's postgres user runs it then.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _owner() -> tuple[int, int]:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        return entry.pw_uid, entry.pw_gid
    return os.getuid(), os.getgid()


def paths(layout: Layout) -> dict[str, Path]:
    root = layout.root / "postgres"
    return {"root": root, "data": root / "data", "socket": root / "socket", "log": root / "postgres.log"}


def install(layout: Layout) -> None:
    if not (BIN / "postgres").exists():
        raise LabError(
            SERVICE,
            f"{BIN / 'postgres'} missing: install the Debian package postgresql-{POSTGRES_MAJOR} (`make deps` does)",
        )
    procs.run(
        ["bash", layout.tools_dir / "build-timescaledb.sh"],
        "timescaledb",
        env={"TSDB_VERSION": TIMESCALEDB_VERSION, "PG_CONFIG": str(BIN / "pg_config")},
        timeout=1200,
    )


def _psql(layout: Layout, database: str, sql: str) -> str:
    p = paths(layout)
    return procs.run(
        _as_postgres(
            [
                BIN / "psql",
                "-h",
                p["socket"],
                "-p",
                str(layout.ports.postgres),
                "-U",
                USER,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-tAc",
                sql,
            ]
        ),
        SERVICE,
        log=None,
    ).strip()


def is_running(layout: Layout) -> bool:
    p = paths(layout)
    if not (p["data"] / "PG_VERSION").exists():
        return False
    try:
        procs.run(_as_postgres([BIN / "pg_ctl", "status", "-D", p["data"]]), SERVICE)
    except LabError:
        return False
    return True


def up(layout: Layout) -> None:
    install(layout)
    p = paths(layout)
    uid, gid = _owner()
    if not (p["data"] / "PG_VERSION").exists():
        shutil.rmtree(p["root"], ignore_errors=True)
        for d in (p["root"], p["data"], p["socket"]):
            d.mkdir(parents=True, exist_ok=True)
            os.chown(d, uid, gid)
        pwfile = p["root"] / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        os.chown(pwfile, uid, gid)
        procs.run(
            _as_postgres(
                [
                    BIN / "initdb",
                    "-D",
                    p["data"],
                    "-U",
                    USER,
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            SERVICE,
        )
        pwfile.unlink()
        with (p["data"] / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {layout.ports.postgres}\n"
                f"unix_socket_directories = '{p['socket']}'\n"
                "shared_preload_libraries = 'timescaledb'\ntimescaledb.telemetry_level = off\n"
                "max_connections = 200\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )
    if not is_running(layout):
        p["log"].touch()
        os.chown(p["log"], uid, gid)
        print(f"lab: starting PostgreSQL on 127.0.0.1:{layout.ports.postgres}", flush=True)
        procs.run(
            _as_postgres([BIN / "pg_ctl", "start", "-w", "-t", "60", "-D", p["data"], "-l", p["log"]]),
            SERVICE,
            log=None,
        )
    procs.wait_until(
        lambda: _psql(layout, "postgres", "SELECT 1") == "1", service=SERVICE, what="SELECT 1", timeout=60, log=p["log"]
    )
    for database in DATABASES.values():
        exists = f"SELECT count(*) FROM pg_database WHERE datname = '{database}'"
        if _psql(layout, "postgres", exists) == "0":
            _psql(layout, "postgres", f"CREATE DATABASE {database} OWNER {USER}")
    _psql(layout, DATABASES["timescaledb"], "CREATE EXTENSION IF NOT EXISTS timescaledb")


def down(layout: Layout) -> None:
    if is_running(layout):
        procs.run(_as_postgres([BIN / "pg_ctl", "stop", "-m", "fast", "-D", paths(layout)["data"]]), SERVICE)
        print("lab: stopped PostgreSQL", flush=True)


def dsn(layout: Layout, database: str) -> str:
    return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{layout.ports.postgres}/{database}"


def describe(layout: Layout) -> dict[str, Any]:
    version = _psql(layout, "postgres", "SHOW server_version")
    tsdb = _psql(layout, DATABASES["timescaledb"], "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    return {
        "postgres": {
            "dsn": dsn(layout, DATABASES["postgres"]),
            "version": version,
            "socket_dir": str(paths(layout)["socket"]),
            "log": str(paths(layout)["log"]),
        },
        "timescaledb": {
            "dsn": dsn(layout, DATABASES["timescaledb"]),
            "version": tsdb,
            "postgres_version": version,
            "note": "same server as postgres, database cdc_timescale",
        },
    }
