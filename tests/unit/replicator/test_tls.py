"""The replicator's TLS policy (``cdc_replicator.tls``): contexts built from the config, and
handshake failures explained with the endpoint and the reason, checked against real TLS
handshakes with a loopback server (tests/tlsserver.py) and certificates from test CAs."""

from __future__ import annotations

import datetime
import socket
import ssl
import uuid
from pathlib import Path

import pytest
import trustme
from cdc_replicator.contract.config import ConfigError, Destination, Tls, parse
from cdc_replicator.pipeline.factory import build_sink
from cdc_replicator.tls import TlsConfigError, client_context, explain

from tests.tlsserver import TlsServer


def _files(tmp_path: Path, ca: trustme.CA, *names: str, **cert_options: datetime.datetime) -> tuple[Path, Path, Path]:
    leaf = ca.issue_cert(*names, **cert_options)
    stem = uuid.uuid4().hex
    ca_file = tmp_path / f"ca-{stem}.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert, key = tmp_path / f"cert-{stem}.pem", tmp_path / f"key-{stem}.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return ca_file, cert, key


def _handshake(context: ssl.SSLContext, port: int, host: str = "127.0.0.1") -> str:
    """Connects, exchanges one request and reply (so the server has recorded the handshake) and
    returns the negotiated version; a failure raises the ssl error itself."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert tls.recv(12) == b"HTTP/1.1 503"
        return str(tls.version())


def _read_only(context: ssl.SSLContext, port: int) -> bytes:
    """Handshake, then read without sending (data sent to a server that has given up resets the
    connection, and the reset would hide the server's alert)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.recv(10)


def _failure(context: ssl.SSLContext, port: int, host: str = "127.0.0.1") -> str:
    with pytest.raises(ssl.SSLError) as caught:
        _handshake(context, port, host)
    message = explain(caught.value, f"{host}:{port}", context)
    assert message is not None
    return message


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _config(tls: dict[str, object]) -> Tls:
    doc = f"""
pipeline: t/t
source: {{nodeName: n, cdcRawPath: /x, contactPoints: [h], keyspaces: [k], tls: {tls}}}
destinations: [{{name: d, type: postgres, endpoint: 'h:1', database: db}}]
checkpoint: {{path: /x}}
"""
    source_tls = parse(doc).source.tls
    assert source_tls is not None
    return source_tls


def test_min_version_defaults_to_1_2_and_accepts_1_3_quoted_or_not() -> None:
    assert _config({}).min_version == "1.2"
    assert _config({"minVersion": "1.3"}).min_version == "1.3"
    assert _config({"minVersion": 1.3}).min_version == "1.3"
    with pytest.raises(ConfigError, match="minVersion"):
        _config({"minVersion": "1.1"})


def test_context_carries_the_minimum_version_and_verifies_by_default(tmp_path: Path, ca: trustme.CA) -> None:
    ca_file, _, _ = _files(tmp_path, ca, "localhost")
    default = client_context(Tls(ca_file=str(ca_file)), "h:1")
    strict = client_context(Tls(ca_file=str(ca_file), min_version="1.3"), "h:1")
    assert default is not None
    assert strict is not None
    assert default.minimum_version == ssl.TLSVersion.TLSv1_2
    assert strict.minimum_version == ssl.TLSVersion.TLSv1_3
    assert default.verify_mode == ssl.CERT_REQUIRED
    assert default.check_hostname
    assert client_context(None, "h:1") is None
    assert client_context(Tls(enabled=False), "h:1") is None


def test_unloadable_files_name_the_endpoint_and_the_file_not_its_contents(tmp_path: Path, ca: trustme.CA) -> None:
    ca_file, cert, _key = _files(tmp_path, ca, "localhost")
    _, _, other_key = _files(tmp_path, ca, "elsewhere")
    with pytest.raises(TlsConfigError, match=r"TLS to db:5432: cannot load caFile /nonexistent/ca.pem"):
        client_context(Tls(ca_file="/nonexistent/ca.pem"), "db:5432")
    with pytest.raises(TlsConfigError) as caught:
        client_context(Tls(ca_file=str(ca_file), cert_file=str(cert), key_file=str(other_key)), "db:5432")
    message = str(caught.value)
    assert "db:5432" in message
    assert str(cert) in message
    assert str(other_key) in message
    assert "PRIVATE KEY" not in message
    assert other_key.read_text().splitlines()[1] not in message
    assert isinstance(caught.value, ConfigError)  # `run` exits 2 with the message, as for any config error


def test_a_tls_1_3_handshake_with_a_client_certificate(tmp_path: Path, ca: trustme.CA) -> None:
    ca_file, cert, key = _files(tmp_path, ca, "127.0.0.1")
    _, client_cert, client_key = _files(tmp_path, ca, "client@test")
    context = client_context(
        Tls(ca_file=str(ca_file), cert_file=str(client_cert), key_file=str(client_key), min_version="1.3"), "x"
    )
    assert context is not None
    with TlsServer(cert, key, client_ca=ca_file) as server:
        assert _handshake(context, server.port) == "TLSv1.3"
    assert server.handshakes[0].client_cert is not None


def test_a_server_offering_only_tls_1_2_is_refused_when_1_3_is_required(tmp_path: Path, ca: trustme.CA) -> None:
    ca_file, cert, key = _files(tmp_path, ca, "127.0.0.1")
    with TlsServer(cert, key, max_version=ssl.TLSVersion.TLSv1_2) as server:
        relaxed = client_context(Tls(ca_file=str(ca_file)), "x")
        assert relaxed is not None
        assert _handshake(relaxed, server.port) == "TLSv1.2"
        strict = client_context(Tls(ca_file=str(ca_file), min_version="1.3"), "x")
        assert strict is not None
        message = _failure(strict, server.port)
    assert message.startswith(f"TLS to 127.0.0.1:{server.port} failed: protocol too old")
    assert "minimum 1.3" in message


def test_a_server_from_another_ca_is_refused_as_unknown_ca(tmp_path: Path, ca: trustme.CA) -> None:
    ca_file, _, _ = _files(tmp_path, ca, "127.0.0.1")
    _, cert, key = _files(tmp_path, trustme.CA(), "127.0.0.1")
    context = client_context(Tls(ca_file=str(ca_file)), "x")
    assert context is not None
    with TlsServer(cert, key) as server:
        message = _failure(context, server.port)
    assert message.startswith(f"TLS to 127.0.0.1:{server.port} failed: unknown CA")


def test_a_certificate_for_another_name_is_refused_as_name_mismatch(tmp_path: Path, ca: trustme.CA) -> None:
    ca_file, cert, key = _files(tmp_path, ca, "db.elsewhere.test")
    context = client_context(Tls(ca_file=str(ca_file)), "x")
    assert context is not None
    with TlsServer(cert, key) as server:
        by_ip = _failure(context, server.port)
        by_name = _failure(context, server.port, host="localhost")
    assert by_ip.startswith(f"TLS to 127.0.0.1:{server.port} failed: name mismatch")
    assert by_name.startswith(f"TLS to localhost:{server.port} failed: name mismatch")


def test_an_expired_server_certificate_is_refused_as_expired(tmp_path: Path, ca: trustme.CA) -> None:
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    ca_file, cert, key = _files(tmp_path, ca, "127.0.0.1", not_before=past, not_after=past + datetime.timedelta(days=1))
    context = client_context(Tls(ca_file=str(ca_file)), "x")
    assert context is not None
    with TlsServer(cert, key) as server:
        message = _failure(context, server.port)
    assert message.startswith(f"TLS to 127.0.0.1:{server.port} failed: certificate expired")


def test_a_server_requiring_a_client_certificate_refuses_a_client_without_one(tmp_path: Path, ca: trustme.CA) -> None:
    ca_file, cert, key = _files(tmp_path, ca, "127.0.0.1")
    context = client_context(Tls(ca_file=str(ca_file), min_version="1.3"), "x")
    assert context is not None
    # TLS 1.3 finishes the client's side of the handshake first; the server's alert comes on the first read.
    with TlsServer(cert, key, client_ca=ca_file) as server, pytest.raises(ssl.SSLError) as caught:
        _read_only(context, server.port)
    message = explain(caught.value, "db:1", context)
    assert message is not None
    assert message.startswith("TLS to db:1 failed: client certificate refused")


def test_errors_without_a_tls_failure_are_not_explained() -> None:
    assert explain(ConnectionRefusedError(111, "Connection refused"), "db:1") is None
    assert explain(ValueError("nope"), "db:1") is None


def test_a_tls_failure_wrapped_by_a_driver_is_found(tmp_path: Path, ca: trustme.CA) -> None:
    ca_file, _, _ = _files(tmp_path, ca, "127.0.0.1")
    _, cert, key = _files(tmp_path, trustme.CA(), "127.0.0.1")
    context = client_context(Tls(ca_file=str(ca_file)), "x")
    assert context is not None
    with TlsServer(cert, key) as server, pytest.raises(ssl.SSLError) as caught:
        _handshake(context, server.port)
    # The shapes drivers wrap it in: a cause chain, and the Cassandra driver's {host: error} dict.
    chained = RuntimeError("request failed")
    chained.__cause__ = caught.value
    assert (explain(chained, "a:1") or "").startswith("TLS to a:1 failed: unknown CA")
    per_host = Exception("Unable to connect to any servers", {"127.0.0.12:9042": caught.value})
    assert (explain(per_host, "b:1") or "").startswith("TLS to b:1 failed: unknown CA")


@pytest.mark.parametrize("case", ["unknown CA", "name mismatch", "protocol too old"])
def test_a_tls_failure_kept_only_as_text_is_read_from_the_text(tmp_path: Path, ca: trustme.CA, case: str) -> None:
    """cassandra-driver re-raises a failed handshake as socket.error(errno, "Tried connecting to …
    Last error: <the ssl error's text>"), dropping the ssl exception itself."""
    ca_file, cert, key = _files(tmp_path, ca, "127.0.0.1")
    max_version = None
    if case == "unknown CA":
        _, cert, key = _files(tmp_path, trustme.CA(), "127.0.0.1")
    elif case == "name mismatch":
        _, cert, key = _files(tmp_path, ca, "db.elsewhere.test")
    else:
        max_version = ssl.TLSVersion.TLSv1_2
    context = client_context(Tls(ca_file=str(ca_file), min_version="1.3"), "x")
    assert context is not None
    with TlsServer(cert, key, max_version=max_version) as server, pytest.raises(ssl.SSLError) as caught:
        _handshake(context, server.port)
    flattened = OSError(1, f"Tried connecting to [('127.0.0.1', {server.port})]. Last error: {caught.value}")
    assert not isinstance(flattened, ssl.SSLError)
    message = explain(Exception("Unable to connect to any servers", {"h:1": flattened}), "h:1", context)
    assert (message or "").startswith(f"TLS to h:1 failed: {case}"), message


@pytest.mark.parametrize("endpoint", ["http://ch:8123", "ch:8123", "chdb:///var/lib/chdb"])
def test_clickhouse_tls_needs_an_https_endpoint(endpoint: str) -> None:
    doc = f"""
pipeline: t/t
source: {{nodeName: n, cdcRawPath: /x, contactPoints: [h], keyspaces: [k]}}
destinations: [{{name: ch, type: clickhouse, endpoint: '{endpoint}', database: db, tls: {{caFile: /ca.pem}}}}]
checkpoint: {{path: /x}}
"""
    with pytest.raises(ConfigError, match="tls needs an https:// endpoint"):
        parse(doc)
    assert parse(doc.replace("caFile: /ca.pem", "enabled: false")).destinations[0].tls is not None
    assert parse(doc.replace(endpoint, "https://ch:8443")).destinations[0].endpoint == "https://ch:8443"


@pytest.mark.parametrize(
    ("kind", "endpoint"), [("postgres", "db:5432"), ("timescaledb", "db:5432"), ("clickhouse", "https://db:8443")]
)
def test_a_missing_ca_file_fails_when_the_sink_is_built(kind: str, endpoint: str) -> None:
    """Not later, in the retry loop of an unreachable destination: a bad file is a config error."""
    destination = Destination.model_validate(
        {"name": "d", "type": kind, "endpoint": endpoint, "database": "db", "tls": {"caFile": "/nonexistent/ca.pem"}}
    )
    with pytest.raises(TlsConfigError, match=r"TLS to db:\d+: cannot load caFile /nonexistent/ca.pem"):
        build_sink(destination, pipeline="t/t", node="n", types_of=None)
