"""TLS for every connection the replicator makes: contexts from the config, failures explained.

One policy for Cassandra (CQL), Postgres/TimescaleDB (asyncpg) and ClickHouse over HTTPS
(urllib3 under clickhouse-connect), and every context comes from here: verify the server
against ``caFile`` (the system store when unset), check its name, present
``certFile``/``keyFile`` when configured, and refuse any protocol below ``minVersion``.
``insecureSkipVerify`` turns verification off (tests only); the minimum version still holds.

When a handshake fails, :func:`explain` turns the library's exception (however deeply the
driver wrapped it) into one line naming the endpoint and the reason: unknown CA, name
mismatch, protocol too old, certificate expired, client certificate refused. The line names
files and endpoints, never their contents.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator

from cdc_replicator.contract.config import ConfigError, Tls
from cdc_replicator.endpoints import host_port

MIN_VERSIONS: dict[str, ssl.TLSVersion] = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class TlsConfigError(ConfigError):
    """A TLS file named in the config cannot be used (missing, unreadable, not PEM, key mismatch)."""


def client_context(tls: Tls | None, endpoint: str) -> ssl.SSLContext | None:
    """The client-side context for ``endpoint``, or None when TLS is off for it.

    Errors loading the CA bundle or the client pair name the endpoint and the file."""
    if tls is None or not tls.enabled:
        return None
    try:
        context = ssl.create_default_context(cafile=tls.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"TLS to {endpoint}: cannot load caFile {tls.ca_file}: {_short(exc)}") from None
    context.minimum_version = MIN_VERSIONS[tls.min_version]
    if tls.cert_file and tls.key_file:
        try:
            context.load_cert_chain(tls.cert_file, tls.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(
                f"TLS to {endpoint}: cannot load certFile {tls.cert_file} with keyFile {tls.key_file}: {_short(exc)}"
            ) from None
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def https_context(url: str, tls: Tls | None, default_port: int) -> ssl.SSLContext | None:
    """The context for an ``https://`` URL (None for any other): ``tls`` if given, else the default
    policy (system CAs, TLS 1.2 minimum). https:// means TLS even where ``tls`` says ``enabled:
    false``. Unloadable files raise ``TlsConfigError`` here, when the client is built."""
    if not url.startswith("https://"):
        return None
    host, port = host_port(url, default_port)
    policy = tls if tls is not None and tls.enabled else Tls()
    return client_context(policy, f"{host}:{port}")


def _short(exc: BaseException) -> str:
    """An OS or OpenSSL error without the file's bytes: its strerror or OpenSSL reason."""
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc.strerror or type(exc).__name__)
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__


# OpenSSL's X509_V_ERR_* codes (x509_vfy.h), as ssl.SSLCertVerificationError.verify_code carries them.
_VERIFY_REASONS: dict[int, str] = {
    **dict.fromkeys(
        (2, 18, 19, 20, 21), "unknown CA: the server's certificate is not signed by a CA in the configured caFile"
    ),
    62: "name mismatch: the server's certificate does not name this host",
    64: "name mismatch: the server's certificate does not name this IP address",
    10: "certificate expired: the server's certificate is past its validity",
    9: "certificate not yet valid",
}

# OpenSSL reason codes of ssl.SSLError (ssl.SSLError.reason).
_PROTOCOL_TOO_OLD = "protocol too old: the server offers no TLS version at or above the minimum {minimum}"
_CLIENT_CERT_REFUSED = "client certificate refused by the server"
_SSL_REASONS: dict[str, str] = {
    # The peers share no acceptable protocol version.
    **dict.fromkeys(
        (
            "TLSV1_ALERT_PROTOCOL_VERSION",
            "UNSUPPORTED_PROTOCOL",
            "NO_PROTOCOLS_AVAILABLE",
            "WRONG_SSL_VERSION",
            "VERSION_TOO_LOW",
        ),
        _PROTOCOL_TOO_OLD,
    ),
    # The server refused our certificate, or wanted one we did not send.
    **dict.fromkeys(
        (
            "TLSV13_ALERT_CERTIFICATE_REQUIRED",
            "SSLV3_ALERT_BAD_CERTIFICATE",
            "TLSV1_ALERT_UNKNOWN_CA",
            "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
            "TLSV1_ALERT_ACCESS_DENIED",
            "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        ),
        _CLIENT_CERT_REFUSED,
    ),
    "WRONG_VERSION_NUMBER": "the server does not speak TLS on this port",
}


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps: causes, contexts, urllib3's ``reason``, and the
    per-host errors of the Cassandra driver's NoHostAvailable (a dict in its args)."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped: list[object] = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        errors = getattr(current, "errors", None)  # cassandra.cluster.NoHostAvailable: {host: exception}
        if isinstance(errors, dict):
            wrapped.extend(errors.values())
        for arg in current.args:
            if isinstance(arg, dict):
                wrapped.extend(arg.values())
            elif isinstance(arg, BaseException):
                wrapped.append(arg)
        stack.extend(w for w in reversed(wrapped) if isinstance(w, BaseException))


# OpenSSL's texts for the verify codes above (X509_verify_cert_error_string, and CPython's own
# for host names), for drivers that keep only the message of the ssl error.
_VERIFY_TEXTS: dict[str, int] = {
    "unable to get local issuer certificate": 20,
    "self-signed certificate in certificate chain": 19,
    "self signed certificate in certificate chain": 19,
    "self-signed certificate": 18,
    "self signed certificate": 18,
    "unable to get issuer certificate": 2,
    "unable to verify the first certificate": 21,
    "hostname mismatch": 62,
    "ip address mismatch": 64,
    "certificate has expired": 10,
    "certificate is not yet valid": 9,
}
_SSL_MESSAGE = re.compile(r"\[SSL: ([A-Z0-9_]+)\]\s*([^(\n]*)")


def _from_object(cause: BaseException, min_version: str) -> str | None:
    if isinstance(cause, ssl.SSLCertVerificationError):
        what = _VERIFY_REASONS.get(cause.verify_code, "certificate verification failed")
        return f"{what} ({cause.verify_message})"
    if isinstance(cause, ssl.SSLError):
        code = str(cause.reason or cause.strerror or type(cause).__name__)
        what = _SSL_REASONS.get(code, "TLS handshake failed").format(minimum=min_version)
        return f"{what} ({code})"
    return None


def _from_message(cause: BaseException, min_version: str) -> str | None:
    """The cassandra-driver re-raises a failed handshake as a plain socket.error carrying only the
    ssl error's text ("... Last error: [SSL: CODE] detail"): read the reason from that text."""
    found = _SSL_MESSAGE.search(str(cause))
    if found is None:
        return None
    code, detail = found.group(1), found.group(2).strip().rstrip(".")
    if code == "CERTIFICATE_VERIFY_FAILED":
        detail = detail.removeprefix("certificate verify failed:").strip()
        lowered = detail.lower()
        verify = next((c for text, c in _VERIFY_TEXTS.items() if lowered.startswith(text)), -1)
        return f"{_VERIFY_REASONS.get(verify, 'certificate verification failed')} ({detail})"
    what = _SSL_REASONS.get(code, "TLS handshake failed").format(minimum=min_version)
    return f"{what} ({code})"


def reason(exc: BaseException, min_version: str = "1.2") -> str | None:
    """Why a TLS handshake failed, in words, or None when ``exc`` holds no TLS failure."""
    causes = list(_causes(exc))
    for cause in causes:
        found = _from_object(cause, min_version)
        if found is not None:
            return found
    for cause in causes:
        found = _from_message(cause, min_version)
        if found is not None:
            return found
    return None


def explain(exc: BaseException, endpoint: str, policy: ssl.SSLContext | Tls | None = None) -> str | None:
    """``TLS to <endpoint> failed: <reason>``, or None when ``exc`` is no TLS failure.

    ``policy`` (the config or the context the connection used) supplies the minimum version
    the message names."""
    minimum = "1.2"
    if isinstance(policy, Tls):
        minimum = policy.min_version
    elif isinstance(policy, ssl.SSLContext):
        minimum = next((name for name, v in MIN_VERSIONS.items() if v == policy.minimum_version), minimum)
    why = reason(exc, minimum)
    return None if why is None else f"TLS to {endpoint} failed: {why}"
