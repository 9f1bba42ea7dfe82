"""Running ``cdc-replicator run`` as a real process in tests, and a TCP proxy to cut a destination off."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from e2e.lab.ports import free_port

ROOT = Path(__file__).resolve().parents[3]
BINARY = ROOT / ".venv" / "bin" / "cdc-replicator"


def pg_parts(dsn: str) -> dict[str, Any]:
    """host:port, database, user and password of a lab DSN (postgresql://user:pw@host:port/db)."""
    rest = dsn.split("://", 1)[1]
    creds, _, location = rest.rpartition("@")
    user, _, password = creds.partition(":")
    hostport, _, database = location.partition("/")
    return {"endpoint": hostport, "database": database, "user": user, "password": password}


def write_config(path: Path, **config: Any) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Replicator:
    """One replicator process; logs go to ``<dir>/replicator-<n>.log``."""

    def __init__(self, config: Path, env: dict[str, str], log_dir: Path) -> None:
        self.config = config
        self.env = {**os.environ, **env}
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.log_dir / f"replicator-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [str(BINARY), "run", "--config", str(self.config)], stdout=log, stderr=subprocess.STDOUT, env=self.env
        )

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait(30)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait: the exit code."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in sorted(self.log_dir.glob("replicator-*.log")))


def read_checkpoint(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def wait_until(condition: Callable[[], bool], timeout: float, what: str, logs: Callable[[], str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{logs()}" if logs else ""))


def positions(checkpoint: dict[str, Any] | None) -> dict[str, str | None]:
    if checkpoint is None:
        return {}
    return {d["name"]: d.get("position") for d in checkpoint["destinations"]}


def chdb_records(path: Path, database: str, table: str) -> list[dict[str, Any]]:
    """Rows of a chDB view, read in a child process (chDB allows one data path per process)."""
    code = (
        "import pickle, sys, clickhouse_connect\n"
        f"c = clickhouse_connect.get_client(interface='chdb', dsn='chdb://{path}')\n"
        f"r = c.query('SELECT * FROM `{database}`.`{table}`', query_formats={{'String': 'bytes'}})\n"
        "sys.stdout.buffer.write(pickle.dumps(list(r.named_results())))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
    records: list[dict[str, Any]] = pickle.loads(out.stdout)
    return records


class Proxy:
    """A TCP proxy to a destination that can be cut (connections dropped, new ones refused) and restored."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not on Linux.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self._conns.clear()
