"""One ClickHouse server: ``clickhouse local`` listening on HTTP and TCP, with a user and password.

``clickhouse local`` reads a server-style config (``--config-file``) and, through its
``users_config``, a users.xml: the lab's user ``cdc`` logs in with its password (a wrong one:
AUTHENTICATION_FAILED). ``default`` stays: clickhouse local's own session always logs in as
``default`` with an empty password from a loopback address (``LocalConnection``), so it can be
neither removed, nor given a password, nor told apart by network from a client on 127.0.0.1.
It is confined by grants to what the start-up queries need, SYSTEM LISTEN and reading
``system.numbers``: a client without credentials sees no database and reads no table of
``cdc``'s, though it could stop the listeners. (Quotas and ``max_concurrent_queries_for_user``,
which could have locked it out after start-up, are not applied to clickhouse local's HTTP
queries; users.xml has no ``valid_until``. Measured on 26.7.2.1.)

No HTTPS: in clickhouse-local, SYSTEM START LISTEN accepts only TCP and HTTP ("supports only TCP
and HTTP listeners", UNSUPPORTED_METHOD for HTTPS, TCP SECURE and CUSTOM), and ``QUERIES ALL``
starts neither ``https_port`` nor ``<protocols>`` entries; ClickHouse TLS is tested against a TLS
terminator in front of this server instead (tests/tlsserver.py).
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from e2e.lab import procs

SERVICE = "clickhouse"
USER = "cdc"
PASSWORD = "cdc-lab-password"  # noqa: S105 - a throwaway lab credential on loopback
STARTUP = (
    "SYSTEM START LISTEN HTTP",
    "SYSTEM START LISTEN TCP",
    # Never ends, at almost no CPU: sleep() is capped at 3 s per block, so one row per block.
    "SELECT sleep(3) FROM system.numbers SETTINGS max_block_size = 1 FORMAT Null",
)
LAUNCHER = "e2e.lab.clickhouse.launch"


class ClickHouseError(Exception):
    """ClickHouse refused a query: ``code`` is its HTTP status, ``text`` its own message."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"HTTP {code}: {text.strip()[:300]}")
        self.code = code
        self.text = text


def users_xml(user: str, password: str) -> str:
    digest = hashlib.sha256(password.encode()).hexdigest()
    grants = "".join(f"<query>{q}</query>" for q in ("GRANT SYSTEM LISTEN ON *.*", "GRANT SELECT ON system.numbers"))
    return f"""<clickhouse>
  <profiles><default/></profiles>
  <quotas><default/></quotas>
  <users>
    <default>
      <no_password/>
      <networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <grants>{grants}</grants>
    </default>
    <{user}>
      <password_sha256_hex>{digest}</password_sha256_hex>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <access_management>1</access_management>
    </{user}>
  </users>
</clickhouse>
"""


def config_xml(users: Path, log: Path) -> str:
    return f"""<clickhouse>
  <users_config>{escape(str(users))}</users_config>
  <logger><log>{escape(str(log))}</log></logger>
</clickhouse>
"""


class Server:
    """A ClickHouse server under ``root`` (config, data, logs), listening on 127.0.0.1.

    The lab's own is one (``e2e.lab.clickhouse``); tests start private ones when they must stop
    a server mid-run without disturbing every other test."""

    def __init__(self, root: Path, http_port: int, tcp_port: int, library: Path) -> None:
        self.root = root
        self.http_port = http_port
        self.tcp_port = tcp_port
        self.library = library
        self.data = root / "data"
        self.conf = root / "conf"
        self.log = root / "clickhouse.log"
        self.stdout_log = root / "stdout.log"
        self.pidfile = root / "pid"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def marker(self) -> str:
        # The port, not a path: it is this server's alone, whichever checkout started it.
        return f"--http_port={self.http_port}"

    def command(self) -> list[str | Path]:
        return [
            sys.executable,
            "-m",
            LAUNCHER,
            self.library,
            f"--config-file={self.conf / 'config.xml'}",
            f"--path={self.data}",
            self.marker,
            f"--tcp_port={self.tcp_port}",
            "--listen_host=127.0.0.1",
            "--log-level=information",
            "--query",
            "; ".join(STARTUP),
        ]

    def pid(self) -> int | None:
        return procs.running_pid(self.pidfile, self.marker)

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(self, timeout: float = 120) -> None:
        """Starts the server unless it runs; returns once ``SELECT 1`` answers over HTTP."""
        if not self.is_running():
            for d in (self.data, self.conf):
                d.mkdir(parents=True, exist_ok=True)
            (self.conf / "users.xml").write_text(users_xml(USER, PASSWORD))
            (self.conf / "config.xml").write_text(config_xml(self.conf / "users.xml", self.log))
            procs.start(self.command(), self.pidfile, self.stdout_log, self.marker, cwd=Path(__file__).parents[3])
        procs.wait_until(
            self.ready,
            service=f"{SERVICE} {self.url}",
            what="SELECT 1 over HTTP",
            timeout=timeout,
            log=[self.stdout_log, self.log],
            alive=self.is_running,
        )

    def stop(self, timeout: float = 30) -> bool:
        """SIGTERM, then waits until the data path's lock and the ports are free: the process's
        main thread exits (a zombie) before ClickHouse's own threads have finished shutting down."""
        if not procs.stop(self.pidfile, self.marker, timeout=timeout):
            return False
        procs.wait_until(self.released, service=SERVICE, what="the server to let go", timeout=timeout, log=self.log)
        return True

    def released(self) -> bool:
        """Whether no process holds this server's data path (``status`` lock) or listens on its ports."""
        status = self.data / "status"
        if status.exists():
            with status.open("rb") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False
                fcntl.flock(fh, fcntl.LOCK_UN)
        for port in (self.http_port, self.tcp_port):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return False
        return True

    def purge(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def query(self, sql: str, *, user: str = USER, password: str = PASSWORD, timeout: float = 10) -> str:
        """Runs ``sql`` over HTTP as ``user``; ClickHouse's refusal raises ClickHouseError."""
        request = urllib.request.Request(  # noqa: S310 - an http:// URL of our own making
            f"{self.url}/", data=sql.encode(), headers={"X-ClickHouse-User": user, "X-ClickHouse-Key": password}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return str(response.read().decode())
        except urllib.error.HTTPError as exc:
            raise ClickHouseError(exc.code, exc.read().decode(errors="replace")) from exc

    def ready(self) -> bool:
        return self.query("SELECT 1", timeout=3).strip() == "1"

    def describe(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "http_port": self.http_port,
            "tcp_port": self.tcp_port,
            "user": USER,
            "password": PASSWORD,
            "version": self.query("SELECT version()").strip(),
            "pid": self.pid(),
            "data": str(self.data),
            "log": str(self.log),
        }
