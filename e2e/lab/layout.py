"""Where the lab keeps things: versions, private ports, data directories and caches.

Ports sit away from every standard one so a service the machine already runs never
collides; data lives in one directory (``CDC_LAB_DIR``) that ``down --purge`` removes;
downloads and builds are cached by version under ``~/.cache/cdc-lab``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

CASSANDRA_VERSION = os.environ.get("CDC_LAB_CASSANDRA_VERSION", "5.0.6")
KUBERNETES_VERSION = os.environ.get("CDC_LAB_KUBERNETES_VERSION", "1.36.3")
HELM_VERSION = os.environ.get("CDC_LAB_HELM_VERSION", "3.19.5")
PROMETHEUS_VERSION = os.environ.get("CDC_LAB_PROMETHEUS_VERSION", "3.16.0")  # promtool; Go module v0.316.0
PROMETHEUS_OPERATOR_VERSION = os.environ.get("CDC_LAB_PROMETHEUS_OPERATOR_VERSION", "0.85.0")  # its CRDs
TIMESCALEDB_VERSION = os.environ.get("CDC_LAB_TIMESCALEDB_VERSION", "2.19.3")
POSTGRES_MAJOR = "15"


@dataclass(frozen=True)
class Ports:
    """Fixed private ports, far from standard ones and from each other.

    ``CDC_LAB_PORT_OFFSET`` (a multiple of 100 below 1000) shifts them all, so two labs can run
    side by side: a CI run beside a developer's lab, for instance.
    """

    cassandra_cql: int = 19042
    cassandra_storage: int = 17000
    cassandra_jmx_base: int = 21100  # node i listens on base + i: JMX binds only to 127.0.0.1
    postgres: int = 25432
    openbao: int = 28200
    etcd_client: int = 22379
    etcd_peer: int = 22380
    kube_apiserver: int = 26443
    clickhouse_http: int = 18123
    clickhouse_tcp: int = 19009


@dataclass(frozen=True)
class Layout:
    root: Path
    cache: Path
    repo: Path
    ports: Ports

    @classmethod
    def default(cls) -> Layout:
        # /var/tmp rather than $HOME: the postgres user must traverse it when the lab runs as root.
        root = Path(os.environ.get("CDC_LAB_DIR", "/var/tmp/cdc-lab"))
        cache = Path(os.environ.get("CDC_LAB_CACHE", Path.home() / ".cache" / "cdc-lab"))
        offset = int(os.environ.get("CDC_LAB_PORT_OFFSET", "0"))
        ports = Ports(**{f.name: getattr(Ports, f.name) + offset for f in fields(Ports)})
        return cls(root=root, cache=cache, repo=Path(__file__).resolve().parents[2], ports=ports)

    @property
    def status_file(self) -> Path:
        return self.root / "status.json"

    def service_dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def cassandra_home(self) -> Path:
        return self.cache / f"cassandra-{CASSANDRA_VERSION}"

    @property
    def kubernetes_bin(self) -> Path:
        return self.cache / "bin" / f"kubernetes-{KUBERNETES_VERSION}"

    @property
    def helm_bin(self) -> Path:
        return self.cache / "bin" / f"helm-{HELM_VERSION}" / "helm"

    @property
    def promtool_bin(self) -> Path:
        return self.cache / "bin" / f"prometheus-{PROMETHEUS_VERSION}" / "promtool"

    @property
    def promql_check_bin(self) -> Path:
        return self.promtool_bin.parent / "promql-check"

    @property
    def prometheus_operator_crds(self) -> Path:
        return self.cache / f"prometheus-operator-{PROMETHEUS_OPERATOR_VERSION}" / "crd"

    @property
    def tools_dir(self) -> Path:
        return self.repo / "e2e" / "lab" / "tools"
