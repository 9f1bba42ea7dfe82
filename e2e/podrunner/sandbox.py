"""Materialising a pod on the local disk: its volumes as directories and its containers' env.

Each pod gets a root directory ``<state>/pods/<namespace>_<name>_<uid[:8]>/`` holding
``volumes/<volume name>/`` (configMap, secret, downwardAPI, projected, emptyDir), ``logs/``
and ``spec-<container>.json`` (what the launcher mounts and execs). PVCs live per claim under
``<state>/claims/<namespace>/<claim>/`` so that a new pod of the same claim finds the data.
Volume contents are written once, when the pod starts: later ConfigMap/Secret edits are not
synced (the operator rolls its Deployments on change, so its pods never need that).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from e2e.podrunner.config import ApiServer, RunnerConfig, venv_bin
from e2e.podrunner.kube import Obj, is_not_found

POD_IP = "127.0.0.1"  # every pod shares the host's network: there is no CNI
DEFAULT_MODE = 0o644
TOKEN_SECONDS = 3600


class SetupError(Exception):
    """The pod cannot start yet (a referenced ConfigMap/Secret is missing): retried later."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Sandbox:
    root: Path

    @classmethod
    def for_pod(cls, state_dir: Path, namespace: str, name: str, uid: str) -> Sandbox:
        return cls(state_dir / "pods" / f"{namespace}_{name}_{uid[:8]}")

    def volume(self, name: str) -> Path:
        return self.root / "volumes" / name

    def log(self, container: str) -> Path:
        return self.root / "logs" / f"{container}.log"

    def launch_spec(self, container: str) -> Path:
        return self.root / f"spec-{container}.json"

    @property
    def pids_file(self) -> Path:
        return self.root / "pids.json"


def field_value(pod: Obj, path: str) -> str:
    """A downward-API fieldPath of this pod."""
    meta, spec = pod["metadata"], pod.get("spec", {})
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": POD_IP,
        "status.podIPs": POD_IP,
        "status.hostIP": POD_IP,
        "status.hostIPs": POD_IP,
    }
    if path == "metadata.labels":
        return "\n".join(f'{k}="{v}"' for k, v in sorted((meta.get("labels") or {}).items()))
    if path == "metadata.annotations":
        return "\n".join(f'{k}="{v}"' for k, v in sorted((meta.get("annotations") or {}).items()))
    if path not in simple:
        raise SetupError("CreateContainerConfigError", f"unsupported fieldPath {path}")
    return str(simple[path])


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


class Materialiser:
    """Reads what a pod references from the API and lays it out on disk."""

    def __init__(self, api: client.ApiClient, config: RunnerConfig, server: ApiServer) -> None:
        self.core = client.CoreV1Api(api)
        self.config = config
        self.server = server

    # -- referenced objects ------------------------------------------------------------------

    def _config_map(self, namespace: str, name: str, optional: bool) -> dict[str, bytes] | None:
        try:
            cm = self.core.read_namespaced_config_map(name, namespace)
        except client.ApiException as exc:
            if is_not_found(exc) and optional:
                return None
            if is_not_found(exc):
                raise SetupError("CreateContainerConfigError", f'configmap "{name}" not found') from exc
            raise
        out = {k: v.encode() for k, v in (cm.data or {}).items()}
        out.update({k: base64.b64decode(v) for k, v in (cm.binary_data or {}).items()})
        return out

    def _secret(self, namespace: str, name: str, optional: bool) -> dict[str, bytes] | None:
        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except client.ApiException as exc:
            if is_not_found(exc) and optional:
                return None
            if is_not_found(exc):
                raise SetupError("CreateContainerConfigError", f'secret "{name}" not found') from exc
            raise
        return {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}

    def _token(self, pod: Obj, audience: str | None, seconds: int) -> bytes:
        """A real bound token for the pod's service account, as the kubelet asks for it."""
        meta = pod["metadata"]
        sa = pod["spec"].get("serviceAccountName") or "default"
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(
                audiences=[audience] if audience else [],
                expiration_seconds=max(600, seconds),
                bound_object_ref=client.V1BoundObjectReference(
                    api_version="v1", kind="Pod", name=meta["name"], uid=meta["uid"]
                ),
            )
        )
        try:
            resp = self.core.create_namespaced_service_account_token(sa, meta["namespace"], request)
        except client.ApiException as exc:
            if is_not_found(exc):  # the ServiceAccount may come after the pod
                raise SetupError("ContainerCreating", f'serviceaccount "{sa}" not found') from exc
            raise
        assert resp.status is not None
        return str(resp.status.token).encode()

    # -- volumes -----------------------------------------------------------------------------

    def _write_keys(
        self, target: Path, data: dict[str, bytes] | None, items: list[dict[str, Any]] | None, mode: int, what: str
    ) -> None:
        if data is None:
            return
        if not items:
            for key, value in data.items():
                _write(target / key, value, mode)
            return
        for item in items:
            if item["key"] not in data:
                raise SetupError("CreateContainerConfigError", f'key "{item["key"]}" not found in {what}')
            _write(target / item["path"], data[item["key"]], item.get("mode", mode))

    def _projected(self, pod: Obj, target: Path, projected: dict[str, Any]) -> None:
        ns = pod["metadata"]["namespace"]
        mode = projected.get("defaultMode", DEFAULT_MODE)
        for source in projected.get("sources") or []:
            if "serviceAccountToken" in source:
                tok = source["serviceAccountToken"]
                token = self._token(pod, tok.get("audience"), tok.get("expirationSeconds", TOKEN_SECONDS))
                _write(target / tok["path"], token, mode)
            elif "configMap" in source:
                cm = source["configMap"]
                data = self._config_map(ns, cm["name"], cm.get("optional", False))
                self._write_keys(target, data, cm.get("items"), mode, f'configmap "{cm["name"]}"')
            elif "secret" in source:
                sec = source["secret"]
                data = self._secret(ns, sec["name"], sec.get("optional", False))
                self._write_keys(target, data, sec.get("items"), mode, f'secret "{sec["name"]}"')
            elif "downwardAPI" in source:
                self._downward(pod, target, source["downwardAPI"].get("items") or [], mode)

    def _downward(self, pod: Obj, target: Path, items: list[dict[str, Any]], mode: int) -> None:
        for item in items:
            if "fieldRef" in item:
                _write(target / item["path"], field_value(pod, item["fieldRef"]["fieldPath"]).encode(), mode)

    def prepare_volumes(self, pod: Obj, sandbox: Sandbox) -> dict[str, Path]:
        """Every volume of the pod as a local directory (or file, for a hostPath file)."""
        ns = pod["metadata"]["namespace"]
        out: dict[str, Path] = {}
        for vol in pod["spec"].get("volumes") or []:
            name = vol["name"]
            local = sandbox.volume(name)
            if "hostPath" in vol:
                path = Path(self.config.map_host_path(vol["hostPath"]["path"]))
                if vol["hostPath"].get("type") == "DirectoryOrCreate":
                    path.mkdir(parents=True, exist_ok=True)
                if not path.exists():
                    raise SetupError("ContainerCreating", f"hostPath {path} does not exist")
                out[name] = path
                continue
            if "persistentVolumeClaim" in vol:
                claim = vol["persistentVolumeClaim"]["claimName"]
                path = self.config.state_dir / "claims" / ns / claim
                path.mkdir(parents=True, exist_ok=True)
                out[name] = path
                continue
            local.mkdir(parents=True, exist_ok=True)
            out[name] = local
            if "configMap" in vol:
                cm = vol["configMap"]
                data = self._config_map(ns, cm["name"], cm.get("optional", False))
                mode = cm.get("defaultMode", DEFAULT_MODE)
                self._write_keys(local, data, cm.get("items"), mode, f'configmap "{cm["name"]}"')
            elif "secret" in vol:
                sec = vol["secret"]
                data = self._secret(ns, sec["secretName"], sec.get("optional", False))
                mode = sec.get("defaultMode", DEFAULT_MODE)
                self._write_keys(local, data, sec.get("items"), mode, f'secret "{sec["secretName"]}"')
            elif "projected" in vol:
                self._projected(pod, local, vol["projected"])
            elif "downwardAPI" in vol:
                dapi = vol["downwardAPI"]
                self._downward(pod, local, dapi.get("items") or [], dapi.get("defaultMode", DEFAULT_MODE))
            elif "emptyDir" not in vol:
                raise SetupError("CreateContainerConfigError", f"volume {name}: unsupported volume type")
        return out

    # -- env ---------------------------------------------------------------------------------

    def container_env(self, pod: Obj, container: Obj, sandbox: Sandbox) -> dict[str, str]:
        """What the container's process sees: a base like a container image's, then envFrom, then env."""
        ns = pod["metadata"]["namespace"]
        env: dict[str, str] = {
            "PATH": f"{venv_bin()}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "HOSTNAME": pod["metadata"]["name"],
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            # In-cluster config: the service "kubernetes" is the lab API server itself (no kube-proxy).
            "KUBERNETES_SERVICE_HOST": self.server.host,
            "KUBERNETES_SERVICE_PORT": str(self.server.port),
            "KUBERNETES_PORT": f"tcp://{self.server.host}:{self.server.port}",
            "CDC_PODRUNNER_ROOT": str(sandbox.root),
        }
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                ref = source["configMapRef"]
                data = self._config_map(ns, ref["name"], ref.get("optional", False))
            else:
                ref = source["secretRef"]
                data = self._secret(ns, ref["name"], ref.get("optional", False))
            env.update({prefix + k: v.decode() for k, v in (data or {}).items()})
        for var in container.get("env") or []:
            value = self._env_value(pod, var, env)
            if value is not None:
                env[var["name"]] = value
        return env

    def _env_value(self, pod: Obj, var: dict[str, Any], env: dict[str, str]) -> str | None:
        if "valueFrom" not in var:
            return expand(var.get("value", ""), env)
        ns = pod["metadata"]["namespace"]
        src = var["valueFrom"]
        if "fieldRef" in src:
            return field_value(pod, src["fieldRef"]["fieldPath"])
        for kind, read in (("secretKeyRef", self._secret), ("configMapKeyRef", self._config_map)):
            if kind in src:
                ref = src[kind]
                optional = ref.get("optional", False)
                data = read(ns, ref["name"], optional)
                if data is None or ref["key"] not in data:
                    if optional:
                        return None
                    raise SetupError("CreateContainerConfigError", f"couldn't find key {ref['key']} in {ref['name']}")
                return data[ref["key"]].decode()
        return None  # resourceFieldRef: not supported, the variable is left unset


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known variables are replaced, $$ escapes, unknown ones stay."""

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", repl, text)


def container_mounts(container: Obj, volumes: dict[str, Path]) -> list[dict[str, Any]]:
    """The launcher's bind mounts: a volume (or its subPath) onto the mountPath, inside the container."""
    out = []
    for m in container.get("volumeMounts") or []:
        source = volumes[m["name"]]
        if m.get("subPath"):
            source = source / m["subPath"]
            if not source.exists():
                source.mkdir(parents=True)  # as the kubelet does for a missing subPath
        out.append({"source": str(source), "target": m["mountPath"], "readOnly": bool(m.get("readOnly"))})
    return out
