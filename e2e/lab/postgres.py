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


def _server(layout: Layout) -> Server:
    """The lab's own server."""
    return Server(layout.root / "postgres", layout.ports.postgres)


def is_running(layout: Layout) -> bool:
    return _server(layout).is_running()


def up(layout: Layout) -> None:
    install(layout)
    server = _server(layout)
    server.start()
    server.create_database(DATABASES["postgres"])
    server.create_database(DATABASES["timescaledb"], timescaledb=True)


class Server:
    """One PostgreSQL server: a data directory under ``root``, listening on 127.0.0.1:``port``.

    The lab's own server is one; tests start private ones (``private_server``) when they must
    stop a server or change its TLS settings without disturbing every other test. ``root``
    must be traversable by the postgres user when running as root (so not pytest's tmp_path).
    ``conf`` is appended to postgresql.conf on every start, so a restart can change it.
    """

    def __init__(self, root: Path, port: int, conf: str = "", hba: str = "") -> None:
        self.root = root
        self.port = port
        self.conf = conf
        self.hba = hba
        self.data = root / "data"
        self.socket = root / "socket"
        self.log = root / "postgres.log"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def is_running(self) -> bool:
        if not (self.data / "PG_VERSION").exists():
            return False
        try:
            procs.run(_as_postgres([BIN / "pg_ctl", "status", "-D", self.data]), SERVICE)
        except LabError:
            return False
        return True

    def _init(self) -> None:
        uid, gid = _owner()
        shutil.rmtree(self.root, ignore_errors=True)
        for d in (self.root, self.data, self.socket):
            d.mkdir(parents=True, exist_ok=True)
            os.chown(d, uid, gid)
        pwfile = self.root / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        os.chown(pwfile, uid, gid)
        procs.run(
            _as_postgres(
                [
                    BIN / "initdb",
                    "-D",
                    self.data,
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
        base = self.data / "postgresql.conf"
        base.rename(self.data / "postgresql.base.conf")
        hba = self.data / "pg_hba.conf"
        hba.rename(self.data / "pg_hba.base.conf")

    def _write_conf(self) -> None:
        uid, gid = _owner()
        for name in ("postgresql", "pg_hba"):
            # Data directories made before the base copies existed: their files become the base.
            if not (self.data / f"{name}.base.conf").exists():
                shutil.copy(self.data / f"{name}.conf", self.data / f"{name}.base.conf")
        base = (self.data / "postgresql.base.conf").read_text()
        conf = self.data / "postgresql.conf"
        conf.write_text(
            base + f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
            f"unix_socket_directories = '{self.socket}'\n"
            "shared_preload_libraries = 'timescaledb'\ntimescaledb.telemetry_level = off\n"
            "max_connections = 200\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n" + self.conf + "\n"
        )
        # Rules given by the caller come first: pg_hba.conf takes the first line that matches.
        hba = self.data / "pg_hba.conf"
        hba.write_text(self.hba + "\n" + (self.data / "pg_hba.base.conf").read_text())
        for f in (conf, hba):
            os.chown(f, uid, gid)

    def start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            self._init()
        if not self.is_running():
            self._write_conf()
            uid, gid = _owner()
            self.log.touch()
            os.chown(self.log, uid, gid)
            print(f"lab: starting PostgreSQL on 127.0.0.1:{self.port}", flush=True)
            procs.run(
                _as_postgres([BIN / "pg_ctl", "start", "-w", "-t", "60", "-D", self.data, "-l", self.log]),
                SERVICE,
                log=None,
            )
        procs.wait_until(
            lambda: self.psql("postgres", "SELECT 1") == "1", service=SERVICE, what="SELECT 1", timeout=60, log=self.log
        )

    def stop(self) -> None:
        if self.is_running():
            procs.run(_as_postgres([BIN / "pg_ctl", "stop", "-m", "fast", "-D", self.data]), SERVICE)
            print(f"lab: stopped PostgreSQL on 127.0.0.1:{self.port}", flush=True)

    def purge(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, database: str, sql: str) -> str:
        return procs.run(
            _as_postgres(
                [
                    BIN / "psql",
                    "-h",
                    self.socket,
                    "-p",
                    str(self.port),
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

    def create_database(self, database: str, timescaledb: bool = False) -> str:
        """Creates ``database`` (owned by the lab user) unless it exists; returns its DSN."""
        if self.psql("postgres", f"SELECT count(*) FROM pg_database WHERE datname = '{database}'") == "0":
            self.psql("postgres", f"CREATE DATABASE {database} OWNER {USER}")
        if timescaledb:
            self.psql(database, "CREATE EXTENSION IF NOT EXISTS timescaledb")
        return self.dsn(database)


def private_server(layout: Layout, name: str, port: int, conf: str = "", hba: str = "") -> Server:
    """A throwaway server of the lab's build (TimescaleDB preloaded) under the lab's directory,
    for tests that stop it or reconfigure it; ``purge()`` it when done."""
    install(layout)
    return Server(layout.root / "private-postgres" / name, port, conf, hba)


def down(layout: Layout) -> None:
    _server(layout).stop()


def dsn(layout: Layout, database: str) -> str:
    return _server(layout).dsn(database)


def describe(layout: Layout) -> dict[str, Any]:
    server = _server(layout)
    version = server.psql("postgres", "SHOW server_version")
    tsdb = server.psql(DATABASES["timescaledb"], "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    return {
        "postgres": {
            "dsn": dsn(layout, DATABASES["postgres"]),
            "version": version,
            "socket_dir": str(server.socket),
            "log": str(server.log),
        },
        "timescaledb": {
            "dsn": dsn(layout, DATABASES["timescaledb"]),
            "version": tsdb,
            "postgres_version": version,
            "note": "same server as postgres, database cdc_timescale",
        },
    }
