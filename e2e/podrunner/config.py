"""What one runner is told on its command line, as plain data."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

# The product's images set an ENTRYPOINT and the operator renders only ``args``: the runner
# stands in for the image by mapping its name (tag and digest stripped) to a local command.
DEFAULT_ENTRYPOINTS: dict[str, list[str]] = {
    "ghcr.io/cassandra-cdc/replicator": ["cdc-replicator"],
    "ghcr.io/cassandra-cdc/operator": ["cdc-operator"],
}


def host_paths_to_keep() -> list[str]:
    """Host directories every container must still see after its volumes are mounted.

    The commands run from this checkout's virtualenv (and its editable install points into the
    checkout), with the base interpreter behind it. A volume mounted over one of their parents
    (an emptyDir on /tmp, when the checkout lives under /tmp) would hide them; launch.py binds
    them back on top.
    """
    repo = Path(__file__).resolve().parents[2]
    return sorted({str(repo), sys.prefix, sys.base_prefix})


def venv_bin() -> Path:
    """The bin directory of the interpreter running us: cdc-replicator, cdc-operator and python3 live there."""
    return Path(sys.executable).parent


@dataclass(frozen=True)
class ApiServer:
    host: str
    port: int
    ca_file: Path


def api_server_from_kubeconfig(kubeconfig: Path) -> ApiServer:
    """The server of the kubeconfig's current context: pods get it as KUBERNETES_SERVICE_HOST/PORT."""
    doc = yaml.safe_load(kubeconfig.read_text())
    contexts = {c["name"]: c["context"] for c in doc.get("contexts", [])}
    current = contexts.get(doc.get("current-context", ""), {})
    clusters = {c["name"]: c["cluster"] for c in doc["clusters"]}
    cluster = clusters.get(current.get("cluster", ""), doc["clusters"][0]["cluster"])
    url = urlsplit(cluster["server"])
    ca = Path(cluster.get("certificate-authority", ""))
    return ApiServer(host=url.hostname or "127.0.0.1", port=url.port or 443, ca_file=ca)


@dataclass(frozen=True)
class RunnerConfig:
    kubeconfig: Path
    state_dir: Path  # one directory per pod under pods/, per claim under claims/
    node_name: str = "lab-node"
    namespace: str | None = None  # None: every namespace
    label_selector: str | None = None
    # hostPath volume path -> local directory (an unmapped hostPath is used as it is)
    path_map: dict[str, str] = field(default_factory=dict)
    entrypoints: dict[str, list[str]] = field(default_factory=lambda: dict(DEFAULT_ENTRYPOINTS))
    # Restart backoff: kubelet doubles from 10 s to 300 s; tests want restarts within seconds.
    backoff_initial: float = 1.0
    backoff_max: float = 20.0
    heartbeat_seconds: float = 10.0

    def map_host_path(self, path: str) -> str:
        """The longest --path-map prefix wins: /a/b=/x maps /a/b/c to /x/c."""
        for prefix in sorted(self.path_map, key=len, reverse=True):
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return self.path_map[prefix] + path[len(prefix.rstrip("/")) :]
        return path

    def entrypoint(self, image: str) -> list[str]:
        name = image.split("@", 1)[0]
        last = name.rsplit("/", 1)[-1]
        if ":" in last:
            name = name[: len(name) - len(last)] + last.split(":", 1)[0]
        return list(self.entrypoints.get(name, []))
