"""Fixtures of the operator's integration tests: our CRDs installed in the lab's API server."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cdc_operator.api import crds
from cdc_operator.api.base import GROUP, VERSION
from cdc_operator.render import names
from kubernetes import client
from kubernetes.client.rest import ApiException

from e2e.lab.ports import free_port
from tests.integration.waiting import eventually


def install_crds(kube_api: Any) -> None:
    """Create or update our CRDs from the models (not the files: the unit test keeps those equal)."""
    ext = client.ApiextensionsV1Api(kube_api)
    for wanted in crds.all_crds().values():
        name = wanted["metadata"]["name"]
        try:
            current = ext.read_custom_resource_definition(name)
            meta = {**wanted["metadata"], "resourceVersion": current.metadata.resource_version}
            ext.replace_custom_resource_definition(name, {**wanted, "metadata": meta})
        except ApiException as exc:
            if exc.status != 404:
                raise
            ext.create_custom_resource_definition(wanted)

        def established(name: str = name) -> bool:
            got = ext.read_custom_resource_definition(name)
            return any(c.type == "Established" and c.status == "True" for c in (got.status.conditions or []))

        eventually(established, 30, f"CRD {name} to be established")


@pytest.fixture(scope="session")
def cdc_crds(kube_api: Any) -> None:
    install_crds(kube_api)


REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "cdc-operator"
CDC_OPERATOR = REPO / ".venv" / "bin" / "cdc-operator"


def service_account_kubeconfig(kube_api: Any, lab: dict[str, Any], namespace: str, name: str, path: Path) -> str:
    """A kubeconfig authenticating as the ServiceAccount (a TokenRequest token); returns the token too."""
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))
    token = client.CoreV1Api(kube_api).create_namespaced_service_account_token(name, namespace, request).status.token
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "lab",
                "cluster": {"server": lab["kubernetes"]["server"], "certificate-authority": lab["kubernetes"]["ca"]},
            }
        ],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": "lab", "user": name, "namespace": namespace}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(kubeconfig))
    return str(token)


@dataclass
class OperatorRelease:
    """The chart installed in the lab, and credentials of its ServiceAccount."""

    namespace: str
    service_account: str
    kubeconfig: Path
    jwt_file: Path
    vault_role: str
    vault_prefix: str


@pytest.fixture(scope="session")
def operator_release(
    kube_api: Any, lab: dict[str, Any], vault: Any, cdc_crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorRelease]:
    """``helm install`` of the chart; the operator itself runs as a local process with the release's
    ServiceAccount credentials (no kubelet here), so a verb missing from the chart's RBAC fails the tests."""
    helm, kubeconfig = lab["kubernetes"]["helm"], lab["kubernetes"]["kubeconfig"]
    release = f"cdcop-{os.getpid() % 100000}"
    namespace = release
    subprocess.run(
        [helm, "install", release, str(CHART), "-n", namespace, "--create-namespace", "--kubeconfig", kubeconfig],
        check=True,
        capture_output=True,
        timeout=120,
    )
    sa = f"{release}-cdc-operator"
    tmp = tmp_path_factory.mktemp("operator")
    token = service_account_kubeconfig(kube_api, lab, namespace, sa, tmp / "kubeconfig")
    (tmp / "jwt").write_text(token)
    # OpenBao: a role for the release's ServiceAccount that may read its test prefix only.
    prefix = f"optest-{release}"
    vault.sys.create_or_update_policy(
        name=release, policy=f'path "secret/data/{prefix}/*" {{ capabilities = ["read"] }}'
    )
    vault.auth.kubernetes.create_role(
        name=release,
        bound_service_account_names=[sa],
        bound_service_account_namespaces=[namespace],
        policies=[release],
        mount_point="kubernetes",
    )
    yield OperatorRelease(namespace, sa, tmp / "kubeconfig", tmp / "jwt", release, prefix)
    subprocess.run(
        [helm, "uninstall", release, "-n", namespace, "--kubeconfig", kubeconfig],
        check=False,
        capture_output=True,
        timeout=120,
    )
    client.CoreV1Api(kube_api).delete_namespace(namespace)
    vault.auth.kubernetes.delete_role(release, mount_point="kubernetes")
    vault.sys.delete_policy(release)


class RunningOperator:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path, metrics_port: int, liveness_port: int) -> None:
        self.proc, self.log_path, self.metrics_port, self.liveness_port = proc, log, metrics_port, liveness_port

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def run_operator(
    operator_release: OperatorRelease, lab: dict[str, Any], tmp_path: Path
) -> Iterator[Callable[[str], RunningOperator]]:
    """Start ``cdc-operator run`` for one namespace, with short intervals; stopped after the test."""
    started: list[RunningOperator] = []

    def start(
        namespace: str, stale_seconds: float = 600, vault_addr: str | None = None, vault: bool = True
    ) -> RunningOperator:
        metrics_port, liveness_port = free_port(), free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(operator_release.kubeconfig),
            "VAULT_ADDR": vault_addr or lab["openbao"]["addr"],
            "VAULT_AUTH": "kubernetes",
            "VAULT_ROLE": operator_release.vault_role,
            "VAULT_JWT_FILE": str(operator_release.jwt_file),
        }
        env.pop("VAULT_TOKEN", None)
        if not vault:  # an operator installed without Vault (the chart's default)
            env.pop("VAULT_ADDR")
        log = tmp_path / f"operator-{namespace}-{len(started)}.log"
        args = [
            str(CDC_OPERATOR), "run", "-n", namespace,
            "--metrics-port", str(metrics_port), "--liveness-port", str(liveness_port),
            "--status-seconds", "1", "--resync-seconds", "2", "--status-min-interval", "1",
            "--checkpoint-stale-seconds", str(stale_seconds),
        ]  # fmt: skip
        with log.open("wb") as out:
            proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        running = RunningOperator(proc, log, metrics_port, liveness_port)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
TIMEOUT = 60
KEY_1 = base64.b64encode(b"0123456789abcdef-key-one").decode()


def example(name: str, vault_prefix: str) -> dict[str, Any]:
    """A pipeline or policy from examples/, with its Vault paths moved under the test's prefix."""
    text = (EXAMPLES / name).read_text().replace("path: cdc/", f"path: {vault_prefix}/")
    return dict(yaml.safe_load(text))


class Cluster:
    """Small helpers over the admin client for one namespace."""

    def __init__(self, kube_api: Any, namespace: str, operator: RunningOperator) -> None:
        self.ns, self.operator = namespace, operator
        self.core, self.apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
        self.custom = client.CustomObjectsApi(kube_api)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        plural = "cdcpipelines" if body["kind"] == "CdcPipeline" else "maskingpolicies"
        return dict(self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, plural, body))

    def patch(self, plural: str, name: str, patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.ns, plural, name, patch)

    def pipeline(self, name: str = "shop") -> dict[str, Any]:
        return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, "cdcpipelines", name))

    def condition(self, type_: str, name: str = "shop") -> dict[str, Any]:
        conds = (self.pipeline(name).get("status") or {}).get("conditions") or []
        return next((c for c in conds if c["type"] == type_), {})

    def deployments(self) -> dict[str, Any]:
        return {d.metadata.name: d for d in self.apps.list_namespaced_deployment(self.ns).items}

    def hashes(self) -> dict[str, str]:
        return {n: d.spec.template.metadata.annotations[names.HASH_ANNOTATION] for n, d in self.deployments().items()}

    def eventually(self, check: Any, what: str) -> Any:
        def alive_and(check: Any = check) -> Any:
            if self.operator.proc.poll() is not None:  # fail fast, with its log, if the operator died
                raise AssertionError(f"the operator exited with {self.operator.proc.returncode}")
            return check()

        try:
            return eventually(alive_and, TIMEOUT, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- operator log ---\n{self.operator.log()}") from None

    def wait_for_new_hashes(self, before: dict[str, str], what: str) -> dict[str, str]:
        def changed() -> dict[str, str] | None:
            now = self.hashes()
            return now if now.keys() == before.keys() and all(now[k] != before[k] for k in now) else None

        return dict(self.eventually(changed, f"every replicator to roll after {what}"))


@pytest.fixture
def vault_secrets(vault: Any, operator_release: OperatorRelease, kube_namespace: str) -> str:
    """Credentials and the masking key in OpenBao under this test's prefix."""
    prefix = f"{operator_release.vault_prefix}/{kube_namespace}"
    kv = vault.secrets.kv.v2
    kv.create_or_update_secret(path=f"{prefix}/postgres", secret={"username": "cdc", "password": "pw-1"})
    kv.create_or_update_secret(path=f"{prefix}/masking/customer-tokens", secret={"key": KEY_1})
    return prefix
