"""A real TLS server on loopback, in a thread, for tests of the client side's TLS policy.

It completes handshakes with Python's ``ssl`` (OpenSSL), answers each request with a fixed
HTTP reply and records what every handshake negotiated (protocol version, client certificate).
Handshakes that fail are recorded too; the client's view of them is what tests check.
"""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

REPLY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 11\r\nConnection: close\r\n\r\nnot a table"


@dataclass
class Handshake:
    version: str | None = None
    client_cert: dict[str, object] | None = None
    error: str | None = None


@dataclass
class TlsServer:
    """``with TlsServer(cert, key, ...) as server:`` listens on ``server.port`` until the block ends."""

    cert: Path
    key: Path
    max_version: ssl.TLSVersion | None = None
    client_ca: Path | None = None
    """When set, clients must present a certificate signed by this CA."""
    handshakes: list[Handshake] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.max_version is not None:
            context.maximum_version = self.max_version
        if self.client_ca is not None:
            context.load_verify_locations(self.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
        self._context = context
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        self._thread.join(10)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        record = Handshake()
        self.handshakes.append(record)
        conn.settimeout(10)
        try:
            with self._context.wrap_socket(conn, server_side=True) as tls:
                record.version = tls.version()
                record.client_cert = tls.getpeercert()
                _read_request(tls)
                tls.sendall(REPLY)
        except (OSError, ssl.SSLError) as exc:
            record.error = str(exc)
        finally:
            conn.close()


def _read_request(tls: ssl.SSLSocket) -> None:
    """Reads one HTTP request whole (headers and Content-Length body): replying earlier and closing
    would reset the connection under a client still sending, and it would never see the reply."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = tls.recv(65536)
        if not chunk:
            return
        body += chunk
