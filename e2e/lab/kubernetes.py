"""A real Kubernetes control plane without nodes: etcd, kube-apiserver, kube-controller-manager.

This is what controller-runtime's envtest runs, plus the controller-manager so that
garbage collection of owned objects, Deployment rollouts and service-account tokens are
real. There is no kubelet or scheduler: Pods stay Pending until the e2e pod runner takes
them. The binaries are built from the Go module proxy (``tools/build-kubernetes.sh``),
cached by version; certificates come from openssl, made once per lab directory.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

from e2e.lab import procs
from e2e.lab.errors import LabError
from e2e.lab.layout import HELM_VERSION, KUBERNETES_VERSION, Layout

SERVICE = "kubernetes"
SERVICE_CIDR = "10.0.0.0/24"  # virtual only: no traffic is ever routed there without a kube-proxy
ISSUER = "https://kubernetes.default.svc.cluster.local"
APISERVER_SANS = (
    "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,"
    "DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.0.0.1"
)


def install(layout: Layout) -> None:
    procs.run(
        ["bash", layout.tools_dir / "build-kubernetes.sh"],
        SERVICE,
        env={"K8S_VERSION": KUBERNETES_VERSION, "OUT": str(layout.kubernetes_bin)},
        timeout=2400,
    )
    procs.run(
        ["bash", layout.tools_dir / "build-helm.sh"],
        "helm",
        env={"HELM_VERSION": HELM_VERSION, "OUT": str(layout.helm_bin.parent)},
        timeout=1200,
    )


def _dir(layout: Layout) -> Path:
    return layout.service_dir("kubernetes")


def pki(layout: Layout) -> Path:
    return _dir(layout) / "pki"


def kubeconfig_path(layout: Layout) -> Path:
    return _dir(layout) / "admin.kubeconfig"


def _openssl(args: list[str | Path]) -> None:
    procs.run(["openssl", *args], f"{SERVICE} certificates")


def _make_pki(layout: Layout) -> None:
    d = pki(layout)
    if (d / "done").exists():
        return
    d.mkdir(parents=True, exist_ok=True)
    _openssl(
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            "/CN=cdc-lab-ca",
            "-keyout",
            d / "ca.key",
            "-out",
            d / "ca.crt",
        ]
    )

    def signed(name: str, subject: str, extensions: str) -> None:
        ext = d / f"{name}.ext"
        ext.write_text(extensions)
        _openssl(
            [
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                subject,
                "-keyout",
                d / f"{name}.key",
                "-out",
                d / f"{name}.csr",
            ]
        )
        _openssl(
            [
                "x509",
                "-req",
                "-in",
                d / f"{name}.csr",
                "-CA",
                d / "ca.crt",
                "-CAkey",
                d / "ca.key",
                "-CAcreateserial",
                "-days",
                "3650",
                "-extfile",
                ext,
                "-out",
                d / f"{name}.crt",
            ]
        )

    signed("apiserver", "/CN=kube-apiserver", f"subjectAltName={APISERVER_SANS}\nextendedKeyUsage=serverAuth\n")
    signed("admin", "/O=system:masters/CN=cdc-lab-admin", "extendedKeyUsage=clientAuth\n")
    _openssl(["genrsa", "-out", d / "sa.key", "2048"])
    _openssl(["rsa", "-in", d / "sa.key", "-pubout", "-out", d / "sa.pub"])
    (d / "done").touch()


def server(layout: Layout) -> str:
    return f"https://127.0.0.1:{layout.ports.kube_apiserver}"


def _write_kubeconfig(layout: Layout) -> None:
    d = pki(layout)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "cdc-lab", "cluster": {"server": server(layout), "certificate-authority": str(d / "ca.crt")}}
        ],
        "users": [
            {
                "name": "cdc-lab-admin",
                "user": {"client-certificate": str(d / "admin.crt"), "client-key": str(d / "admin.key")},
            }
        ],
        "contexts": [{"name": "cdc-lab", "context": {"cluster": "cdc-lab", "user": "cdc-lab-admin"}}],
        "current-context": "cdc-lab",
    }
    kubeconfig_path(layout).write_text(json.dumps(config, indent=2))


def _ssl_context(layout: Layout) -> ssl.SSLContext:
    d = pki(layout)
    ctx = ssl.create_default_context(cafile=str(d / "ca.crt"))
    ctx.load_cert_chain(str(d / "admin.crt"), str(d / "admin.key"))
    return ctx


def api_get(layout: Layout, path: str, timeout: float = 5) -> Any:
    url = server(layout) + path  # always https to the lab's own API server
    with urllib.request.urlopen(url, context=_ssl_context(layout), timeout=timeout) as resp:  # noqa: S310
        body = resp.read().decode()
    return json.loads(body) if body.startswith(("{", "[")) else body


def _etcd_healthy(layout: Layout) -> bool:
    url = f"http://127.0.0.1:{layout.ports.etcd_client}/health"
    with urllib.request.urlopen(url, timeout=3) as resp:
        return bool(json.loads(resp.read()).get("health") == "true")


def kubectl(layout: Layout, *args: str, timeout: float = 60) -> str:
    return procs.run(
        [layout.kubernetes_bin / "kubectl", f"--kubeconfig={kubeconfig_path(layout)}", *args],
        "kubectl",
        timeout=timeout,
    )


def _components(layout: Layout) -> list[tuple[str, list[str | Path], str]]:
    d, b, p = pki(layout), layout.kubernetes_bin, layout.ports
    etcd_dir = _dir(layout) / "etcd"
    return [
        (
            "etcd",
            [
                b / "etcd",
                "--name",
                "cdc-lab",
                "--data-dir",
                etcd_dir,
                "--listen-client-urls",
                f"http://127.0.0.1:{p.etcd_client}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{p.etcd_client}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{p.etcd_peer}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{p.etcd_peer}",
                "--initial-cluster",
                f"cdc-lab=http://127.0.0.1:{p.etcd_peer}",
                "--listen-metrics-urls",
                "",
                "--unsafe-no-fsync",
                "--log-level",
                "warn",
            ],
            "etcd",
        ),
        (
            "kube-apiserver",
            [
                b / "kube-apiserver",
                f"--etcd-servers=http://127.0.0.1:{p.etcd_client}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={p.kube_apiserver}",
                f"--cert-dir={_dir(layout) / 'apiserver-certs'}",
                f"--tls-cert-file={d / 'apiserver.crt'}",
                f"--tls-private-key-file={d / 'apiserver.key'}",
                f"--client-ca-file={d / 'ca.crt'}",
                f"--service-account-issuer={ISSUER}",
                f"--service-account-key-file={d / 'sa.pub'}",
                f"--service-account-signing-key-file={d / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                "--profiling=false",
                "--enable-priority-and-fairness=false",
                "--v=1",
            ],
            "kube-apiserver",
        ),
        (
            "kube-controller-manager",
            [
                b / "kube-controller-manager",
                f"--kubeconfig={kubeconfig_path(layout)}",
                "--leader-elect=false",
                "--secure-port=0",
                f"--service-account-private-key-file={d / 'sa.key'}",
                f"--root-ca-file={d / 'ca.crt'}",
                f"--cluster-signing-cert-file={d / 'ca.crt'}",
                f"--cluster-signing-key-file={d / 'ca.key'}",
                "--controllers=*",
                "--profiling=false",
                "--v=1",
            ],
            "kube-controller-manager",
        ),
    ]


def _pidfile(layout: Layout, name: str) -> Path:
    return _dir(layout) / f"{name}.pid"


def _log(layout: Layout, name: str) -> Path:
    return _dir(layout) / f"{name}.log"


def is_running(layout: Layout) -> bool:
    return all(procs.running_pid(_pidfile(layout, n), str(cmd[0])) is not None for n, cmd, _ in _components(layout))


def _controller_manager_ready(layout: Layout) -> bool:
    # The service-account controller creates the default ServiceAccount of each namespace:
    # seeing it proves the controller-manager is up and reconciling.
    sa = api_get(layout, "/api/v1/namespaces/default/serviceaccounts/default")
    return bool(sa.get("metadata", {}).get("name") == "default")


def up(layout: Layout) -> None:
    install(layout)
    _make_pki(layout)
    _write_kubeconfig(layout)
    readiness = {
        "etcd": lambda: _etcd_healthy(layout),
        "kube-apiserver": lambda: api_get(layout, "/readyz") == "ok",
        "kube-controller-manager": lambda: _controller_manager_ready(layout),
    }
    for name, cmd, marker in _components(layout):
        pidfile, log = _pidfile(layout, name), _log(layout, name)
        if procs.running_pid(pidfile, marker) is None:
            print(f"lab: starting {name}", flush=True)
            procs.start(cmd, pidfile, log, marker)
        procs.wait_until(
            readiness[name],
            service=name,
            what="readiness",
            timeout=120,
            log=log,
            alive=partial(procs.is_alive, pidfile, marker),
        )


def down(layout: Layout) -> None:
    for name, _cmd, marker in reversed(_components(layout)):
        if procs.stop(_pidfile(layout, name), marker):
            print(f"lab: stopped {name}", flush=True)


def describe(layout: Layout) -> dict[str, Any]:
    version = api_get(layout, "/version")
    etcd_version = (layout.kubernetes_bin / ".etcd-version").read_text().strip()
    if not layout.helm_bin.exists():
        raise LabError("helm", f"{layout.helm_bin} missing")
    return {
        "kubernetes": {
            "kubeconfig": str(kubeconfig_path(layout)),
            "server": server(layout),
            "version": version["gitVersion"],
            "ca": str(pki(layout) / "ca.crt"),
            "service_account_issuer": ISSUER,
            "kubectl": str(layout.kubernetes_bin / "kubectl"),
            "helm": str(layout.helm_bin),
            "helm_version": f"v{HELM_VERSION}",
            "bin_dir": str(layout.kubernetes_bin),
            "logs": {n: str(_log(layout, n)) for n, _c, _m in _components(layout)},
        },
        "etcd": {"endpoint": f"http://127.0.0.1:{layout.ports.etcd_client}", "version": etcd_version.lstrip("v")},
    }
