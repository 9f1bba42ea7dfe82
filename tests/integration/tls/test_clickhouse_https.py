"""ClickHouse over HTTPS: the replicator's clickhouse-connect client follows the destination's TLS
section (CA, client certificate, minimum version), proven against a real TLS endpoint on loopback
(tests/tlsserver.py, OpenSSL through Python's ssl).

No ClickHouse server runs here (the lab's engine is chDB, in-process; Debian's clickhouse-server
is too old for clickhouse-connect), so these tests prove the client's TLS policy, not a
conversation with ClickHouse: the endpoint completes the handshake and answers HTTP 503.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
from cdc_replicator.contract.config import Destination
from cdc_replicator.pipeline.factory import build_sink
from cdc_replicator.sinks.base import DestinationError
from cdc_replicator.sinks.clickhouse import connect
from clickhouse_connect.driver.httputil import get_pool_manager

from tests.integration.tls.conftest import Pki
from tests.tlsserver import TlsServer

pytestmark = pytest.mark.integration


def _tls(pki: Pki, **extra: Any) -> dict[str, Any]:
    return {"caFile": str(pki.ca), "minVersion": "1.3", **extra}


def _destination(port: int, tls: dict[str, Any] | None, host: str = "127.0.0.1") -> Destination:
    return Destination.model_validate(
        {"name": "ch", "type": "clickhouse", "endpoint": f"https://{host}:{port}", "database": "cdc", "tls": tls}
    )


def _start(destination: Destination) -> str:
    """Starts the sink as the replicator does; returns the error it fails with."""
    sink = build_sink(destination, pipeline="t/t", node="n", types_of=None)
    with pytest.raises(DestinationError) as caught:
        asyncio.run(sink.start())
    return str(caught.value)


def test_tls_1_3_with_client_certificate_reaches_the_endpoint(pki: Pki) -> None:
    with TlsServer(pki.server_cert, pki.server_key, client_ca=pki.ca) as server:
        tls = _tls(pki, certFile=str(pki.client_cert), keyFile=str(pki.client_key))
        message = _start(_destination(server.port, tls))
    # Past TLS: the failure is the endpoint's HTTP answer, not the handshake.
    assert "TLS to" not in message
    assert "503" in message, server.handshakes
    done = [h for h in server.handshakes if h.error is None]
    assert done
    assert {h.version for h in done} == {"TLSv1.3"}
    assert all(h.client_cert for h in done)


def test_a_server_offering_only_tls_1_2_is_refused_when_1_3_is_required(pki: Pki) -> None:
    with TlsServer(pki.server_cert, pki.server_key, max_version=ssl.TLSVersion.TLSv1_2) as server:
        message = _start(_destination(server.port, _tls(pki)))
        relaxed = _start(_destination(server.port, _tls(pki, minVersion="1.2")))
    assert message.startswith(f"TLS to 127.0.0.1:{server.port} failed: protocol too old"), message
    assert "minimum 1.3" in message
    assert "TLS to" not in relaxed  # 1.2 allowed: the handshake succeeds and HTTP answers
    assert any(h.version == "TLSv1.2" for h in server.handshakes)


def test_a_server_from_another_ca_is_refused(pki: Pki, other_pki: Pki) -> None:
    with TlsServer(other_pki.server_cert, other_pki.server_key) as server:
        message = _start(_destination(server.port, _tls(pki)))
        # No tls section: https:// still verifies, against the system's CAs, which know neither test CA.
        default = _start(_destination(server.port, None))
    assert message.startswith(f"TLS to 127.0.0.1:{server.port} failed: unknown CA"), message
    assert default.startswith(f"TLS to 127.0.0.1:{server.port} failed: unknown CA"), default


def test_a_certificate_for_another_name_is_refused(misnamed_pki: Pki, pki: Pki) -> None:
    with TlsServer(misnamed_pki.server_cert, misnamed_pki.server_key) as server:
        by_ip = _start(_destination(server.port, _tls(pki)))
        by_name = _start(_destination(server.port, _tls(pki), host="localhost"))
    assert by_ip.startswith(f"TLS to 127.0.0.1:{server.port} failed: name mismatch"), by_ip
    assert by_name.startswith(f"TLS to localhost:{server.port} failed: name mismatch"), by_name


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # what insecureSkipVerify means
def test_insecure_skip_verify_still_holds_the_minimum_version(pki: Pki, other_pki: Pki) -> None:
    with TlsServer(other_pki.server_cert, other_pki.server_key, max_version=ssl.TLSVersion.TLSv1_2) as server:
        skipped = _start(_destination(server.port, {"insecureSkipVerify": True, "minVersion": "1.2"}))
        too_old = _start(_destination(server.port, {"insecureSkipVerify": True, "minVersion": "1.3"}))
    assert "TLS to" not in skipped
    assert too_old.startswith(f"TLS to 127.0.0.1:{server.port} failed: protocol too old"), too_old


def test_plain_http_endpoints_are_unchanged(pki: Pki) -> None:
    """http:// makes no TLS at all: against a TLS endpoint it fails at HTTP, not in a handshake."""
    with TlsServer(pki.server_cert, pki.server_key) as server, pytest.raises(Exception) as caught:  # noqa: PT011
        connect(f"http://127.0.0.1:{server.port}", "cdc")
    assert "TLS to" not in str(caught.value)


def test_a_handshake_failing_mid_run_names_the_endpoint_and_the_reason(pki: Pki, other_pki: Pki) -> None:
    """A running sink renews pooled connections; if the server's certificate was replaced by one
    the CA does not sign, that handshake fails mid-run and must read as at connect time."""
    with TlsServer(other_pki.server_cert, other_pki.server_key) as server:
        sink = build_sink(_destination(server.port, _tls(pki)), pipeline="t/t", node="n", types_of=None)
        assert sink.tls is not None  # type: ignore[attr-defined]
        _, context = sink.tls  # type: ignore[attr-defined]
        pool = get_pool_manager(ssl_context=context, verify=True)

        class Client:
            """Stands in for the client made at start: its next request opens a new connection."""

            def command(self, query: str) -> Any:
                return pool.request("POST", f"https://127.0.0.1:{server.port}/", body=query, retries=False)

        sink.client = Client()  # type: ignore[attr-defined]
        with pytest.raises(DestinationError) as caught:
            asyncio.run(sink.ping())
    assert str(caught.value).startswith(f"ch: TLS to 127.0.0.1:{server.port} failed: unknown CA"), caught.value
