"""Certificates from CAs the tests generate (trustme), and TLS-enabled lab servers built on them.

Files live under the lab's directory (not pytest's tmp_path) because the private PostgreSQL
servers run as the ``postgres`` user, which must read its key (mode 0600, owned by it).
"""

from __future__ import annotations

import os
import pwd
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from e2e.lab import cassandra
from e2e.lab.errors import LabError
from e2e.lab.layout import Layout
from e2e.lab.postgres import Server

SERVER_NAMES = ("127.0.0.1", "localhost", "127.0.0.12", "127.0.0.13")
"""What the good server certificate names: loopback, and the TLS Cassandra nodes' addresses."""


@dataclass(frozen=True)
class Pki:
    """One test PKI written to files: the CA, a server certificate, a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    keystore: Path
    """The server's PKCS#8 key followed by its certificate chain: Cassandra's PEM keystore."""


def _owner() -> tuple[int, int]:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        return entry.pw_uid, entry.pw_gid
    return os.getuid(), os.getgid()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    uid, gid = _owner()
    os.chown(path, uid, gid)
    path.chmod(0o600)
    return path


def write_pki(directory: Path, ca: trustme.CA, *names: str) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    uid, gid = _owner()
    os.chown(directory, uid, gid)
    server = ca.issue_cert(*names)
    client = ca.issue_cert("cdc-replicator@test")
    key = serialization.load_pem_private_key(server.private_key_pem.bytes(), password=None)
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Pki(
        ca=_write(directory / "ca.pem", ca.cert_pem.bytes()),
        server_cert=_write(directory / "server.pem", b"".join(b.bytes() for b in server.cert_chain_pems)),
        server_key=_write(directory / "server.key", server.private_key_pem.bytes()),
        client_cert=_write(directory / "client.pem", b"".join(b.bytes() for b in client.cert_chain_pems)),
        client_key=_write(directory / "client.key", client.private_key_pem.bytes()),
        keystore=_write(directory / "keystore.pem", pkcs8 + b"".join(b.bytes() for b in server.cert_chain_pems)),
    )


@pytest.fixture(scope="session")
def tls_root(lab_layout: Layout) -> Iterator[Path]:
    root = lab_layout.root / "tls-tests" / uuid.uuid4().hex[:8]
    root.mkdir(parents=True)
    uid, gid = _owner()
    for d in (root.parent, root):
        os.chown(d, uid, gid)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    return trustme.CA(organization_name="cdc-lab test CA")


@pytest.fixture(scope="session")
def pki(tls_root: Path, test_ca: trustme.CA) -> Pki:
    """The session's PKI: the server certificate names loopback, localhost and the TLS nodes (127.0.0.12, .13)."""
    return write_pki(tls_root / "good", test_ca, *SERVER_NAMES)


@pytest.fixture(scope="session")
def other_pki(tls_root: Path) -> Pki:
    """A second, unrelated CA: what a client configured with the wrong CA trusts."""
    return write_pki(tls_root / "other", trustme.CA(organization_name="cdc-lab other CA"), *SERVER_NAMES)


@pytest.fixture(scope="session")
def misnamed_pki(tls_root: Path, test_ca: trustme.CA) -> Pki:
    """Signed by the session's CA, but for a name that is not the server's."""
    return write_pki(tls_root / "misnamed", test_ca, "db.elsewhere.test")


def postgres_tls_conf(pki: Pki, *, max_version: str | None = None) -> str:
    conf = (
        f"ssl = on\nssl_cert_file = '{pki.server_cert}'\nssl_key_file = '{pki.server_key}'\n"
        f"ssl_ca_file = '{pki.ca}'\nssl_min_protocol_version = 'TLSv1.2'\n"
    )
    if max_version is not None:
        conf += f"ssl_max_protocol_version = '{max_version}'\n"
    return conf


# Only TLS connections over TCP, with the password (SCRAM); the socket stays for the lab's psql.
HOSTSSL_ONLY = "hostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 0.0.0.0/0 reject"


@pytest.fixture
def tls_postgres(private_postgres: Callable[..., Server]) -> Callable[..., Server]:
    """``make(pki, max_version=None)``: a started private PostgreSQL accepting only TLS over TCP."""

    def make(pki: Pki, max_version: str | None = None) -> Server:
        server = private_postgres("tls", conf=postgres_tls_conf(pki, max_version=max_version), hba=HOSTSSL_ONLY)
        server.start()
        return server

    return make


def _tls_node(layout: Layout, pki: Pki, name: str, protocols: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    tls = cassandra.ClientTls(
        keystore=pki.keystore,
        truststore=pki.ca,
        ca=pki.ca,
        client_cert=pki.client_cert,
        client_key=pki.client_key,
        protocols=protocols,
    )
    try:
        node = cassandra.up_tls(layout, tls, name)
    except LabError as exc:
        cassandra.down_tls(layout, name)
        pytest.fail(exc.describe(), pytrace=False)
    yield {**node.describe(), "node": node}
    cassandra.down_tls(layout, name, purge=True)


@pytest.fixture(scope="session")
def cassandra_tls_node(lab_layout: Layout, lab: dict[str, Any], pki: Pki) -> Iterator[dict[str, Any]]:
    """A one-node cluster of its own (127.0.0.12) speaking CQL only over TLS 1.2 or 1.3, with a
    client certificate, from the session's CA; stopped and removed at the end of the session."""
    yield from _tls_node(lab_layout, pki, "tls", ("TLSv1.2", "TLSv1.3"))


@pytest.fixture(scope="session")
def cassandra_tls12_node(lab_layout: Layout, lab: dict[str, Any], pki: Pki) -> Iterator[dict[str, Any]]:
    """Like ``cassandra_tls_node`` on 127.0.0.13, but offering TLS 1.2 only."""
    yield from _tls_node(lab_layout, pki, "tls12", ("TLSv1.2",))
