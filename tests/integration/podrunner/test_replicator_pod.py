"""The operator's own rendering of a replicator Deployment runs for real under the runner.

The replicator reads its config at /etc/cdc/config (a ConfigMap), finds cdc_raw at the path
written inside that config (a hostPath mapped to an empty directory of the test), writes its
checkpoint into an emptyDir shared with the sidecar, and the checkpoint sidecar publishes it
with in-cluster config through the projected token of a ServiceAccount that may patch only
that ConfigMap. Nothing is replicated: cdc_raw stays empty (the lab's real one is left alone).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cdc_operator.api.pipeline import CdcPipelineSpec
from cdc_operator.render import names
from cdc_operator.render.inputs import PipelineInputs, resolve_nodes
from cdc_operator.render.manifests import render_pipeline
from kubernetes import client

from e2e.lab.layout import Layout
from e2e.lab.ports import free_port
from e2e.podrunner.api import PodRunner
from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration

CDC_RAW = "/var/lib/cassandra/{node}/cdc_raw"  # as on a real Cassandra host; mapped by the runner


def manifests(namespace: str, dsn: str) -> list[dict[str, Any]]:
    """The operator's manifests for one node, minus the owner reference (there is no CdcPipeline here,
    and the garbage collector would delete objects whose owner is missing)."""
    url = urlsplit(dsn)
    spec = CdcPipelineSpec.model_validate(
        {
            "source": {
                "contactPoints": [f"127.0.0.1:{Layout.default().ports.cassandra_cql}"],
                "localDatacenter": "datacenter1",
                "nodes": [{"name": "node1", "kubernetesNode": "lab-node"}],
                "cdcRaw": {"hostPath": {"path": CDC_RAW}},
                "keyspaces": ["podrunner_nothing"],
            },
            "destinations": [
                {
                    "name": "warehouse",
                    "type": "postgres",
                    "endpoint": f"{url.hostname}:{url.port}",
                    "database": url.path.lstrip("/"),
                    "credentials": {"secretRef": {"name": "pg-login"}},
                }
            ],
        }
    )
    inputs = PipelineInputs(
        name="shop",
        namespace=namespace,
        uid="00000000-0000-0000-0000-000000000000",
        spec=spec,
        nodes=resolve_nodes(spec, []),
        secret_env={
            names.env_name("DEST", "warehouse", "USERNAME"): str(url.username),
            names.env_name("DEST", "warehouse", "PASSWORD"): str(url.password),
        },
    )
    out = render_pipeline(inputs)
    for m in out:
        m["metadata"].pop("ownerReferences", None)
        if m["kind"] == "ConfigMap" and "data" in m:
            # Host network: a free metrics port, so a replicator elsewhere on the machine cannot collide.
            (key,) = m["data"]
            m["data"][key] = m["data"][key].replace("metricsPort: 9400", f"metricsPort: {free_port()}")
    return out


def create(kube_api: Any, namespace: str, m: dict[str, Any]) -> None:
    core, apps, rbac = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api), client.RbacAuthorizationV1Api(kube_api)
    create_fn = {
        "Secret": core.create_namespaced_secret,
        "ConfigMap": core.create_namespaced_config_map,
        "ServiceAccount": core.create_namespaced_service_account,
        "Role": rbac.create_namespaced_role,
        "RoleBinding": rbac.create_namespaced_role_binding,
        "Deployment": apps.create_namespaced_deployment,
    }[m["kind"]]
    create_fn(namespace, m)


@pytest.fixture
def cdc_raw(tmp_path: Path) -> Path:
    path = tmp_path / "cdc_raw"
    path.mkdir()
    return path


def test_operator_rendered_replicator_and_sidecar_run_and_publish_a_checkpoint(
    kube_api: Any,
    kube_namespace: str,
    lab: dict[str, Any],
    tmp_path: Path,
    cdc_raw: Path,
    start_runner: Callable[[PodRunner], PodRunner],
) -> None:
    ns = kube_namespace
    runner = start_runner(
        PodRunner(
            lab["kubernetes"]["kubeconfig"],
            tmp_path / "podrunner",
            namespace=ns,
            path_map={CDC_RAW.format(node="node1"): str(cdc_raw)},
        )
    )
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    for m in manifests(ns, lab["postgres"]["dsn"]):
        create(kube_api, ns, m)
    deployment = names.replicator("shop", "node1")

    def available() -> bool:
        d = apps.read_namespaced_deployment(deployment, ns)
        return (d.status.available_replicas or 0) == 1

    eventually(available, 120, "the replicator Deployment to become available")
    (pod,) = core.list_namespaced_pod(ns).items
    assert {s.name: s.ready for s in pod.status.container_statuses} == {"replicator": True, "checkpoint": True}

    def published() -> Any:
        cm = core.read_namespaced_config_map(names.checkpoint_config_map("shop", "node1"), ns)
        return (cm.data or {}).get("checkpoint.json")

    checkpoint = json.loads(eventually(published, 60, "the sidecar to publish the checkpoint"))
    assert checkpoint["node"] == "node1"
    assert [d["name"] for d in checkpoint["destinations"]] == ["warehouse"]
    assert "replicator started" in runner.log(ns, pod.metadata.name, "replicator")
