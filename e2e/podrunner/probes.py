"""Readiness and liveness probes, run from the runner against a container process on the shared host network."""

from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
from typing import Any

from e2e.podrunner.sandbox import POD_IP


def _port(value: Any, container: dict[str, Any]) -> int:
    """A probe port is a number or the name of one of the container's ports."""
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    for p in container.get("ports") or []:
        if p.get("name") == value:
            return int(p["containerPort"])
    raise ValueError(f"no container port named {value!r}")


def _http_get(spec: dict[str, Any], container: dict[str, Any], timeout: float) -> bool:
    host = spec.get("host") or POD_IP
    port = _port(spec["port"], container)
    if spec.get("scheme", "HTTP").upper() == "HTTPS":
        # The kubelet does not verify probe certificates either.
        ctx = ssl._create_unverified_context()  # noqa: S323
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {h["name"]: h["value"] for h in spec.get("httpHeaders") or []}
        conn.request("GET", spec.get("path", "/"), headers=headers)
        return 200 <= conn.getresponse().status < 400
    finally:
        conn.close()


def _tcp(spec: dict[str, Any], container: dict[str, Any], timeout: float) -> bool:
    with socket.create_connection((spec.get("host") or POD_IP, _port(spec["port"], container)), timeout=timeout):
        return True


def _exec(spec: dict[str, Any], pid: int, env: dict[str, str], timeout: float) -> bool:
    # Enter the container's mount namespace, so the command sees the same mounted paths.
    argv = ["nsenter", "--target", str(pid), "--mount", "--", *spec["command"]]
    done = subprocess.run(argv, env=env, capture_output=True, timeout=timeout, check=False)
    return done.returncode == 0


def probe(spec: dict[str, Any], container: dict[str, Any], pid: int, env: dict[str, str]) -> bool:
    """One attempt of a probe; any error (refused, timeout, bad status) is a failure."""
    timeout = float(spec.get("timeoutSeconds", 1))
    try:
        if "httpGet" in spec:
            return _http_get(spec["httpGet"], container, timeout)
        if "tcpSocket" in spec:
            return _tcp(spec["tcpSocket"], container, timeout)
        if "exec" in spec:
            return _exec(spec["exec"], pid, env, timeout)
    except (OSError, ValueError, http.client.HTTPException, subprocess.TimeoutExpired):
        return False
    return False  # grpc probes are not supported
