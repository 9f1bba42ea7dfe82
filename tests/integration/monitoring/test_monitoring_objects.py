"""The chart's monitoring objects are accepted by the lab's API server (with the Prometheus operator's CRDs
applied there), and its monitors select the pods and ports the operator and the chart really run."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cdc_operator.render import names
from cdc_operator.render.manifests import render_pipeline
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.integration.monitoring.conftest import MONITORING_VALUES, only
from tests.integration.operator.conftest import CHART
from tests.integration.waiting import eventually
from tests.unit.operator.conftest import make_inputs

pytestmark = pytest.mark.integration

USED_CRDS = ("prometheusrules", "podmonitors", "servicemonitors")


@pytest.fixture(scope="module")
def prometheus_crds(prometheus_tools: dict[str, Any], lab: dict[str, Any], kube_api: Any) -> None:
    """The Prometheus operator's CRDs for the kinds the chart uses, applied server-side (they are large)."""
    crd_dir = Path(prometheus_tools["operator_crds"])
    kubectl = [lab["kubernetes"]["kubectl"], "--kubeconfig", lab["kubernetes"]["kubeconfig"]]
    for plural in USED_CRDS:
        subprocess.run(
            [*kubectl, "apply", "--server-side", "--force-conflicts", "-f",
             str(crd_dir / f"monitoring.coreos.com_{plural}.yaml")],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    ext = client.ApiextensionsV1Api(kube_api)

    def established() -> bool:
        crds = [ext.read_custom_resource_definition(f"{p}.monitoring.coreos.com") for p in USED_CRDS]
        conditions = [c for crd in crds for c in crd.status.conditions or []]
        return sum(c.type == "Established" and c.status == "True" for c in conditions) == len(USED_CRDS)

    eventually(established, 60, "the Prometheus operator's CRDs to be established")


@pytest.fixture(scope="module")
def release(lab: dict[str, Any], kube_api: Any, prometheus_crds: None) -> Iterator[tuple[str, str]]:
    helm, kubeconfig = lab["kubernetes"]["helm"], lab["kubernetes"]["kubeconfig"]
    name = f"mon-{uuid.uuid4().hex[:6]}"
    result = subprocess.run(
        [helm, "install", name, str(CHART), "-n", name, "--create-namespace", "--kubeconfig", kubeconfig,
         *MONITORING_VALUES, "--set", "monitoring.labels.release=kube-prometheus-stack"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    yield name, name
    subprocess.run(
        [helm, "uninstall", name, "-n", name, "--kubeconfig", kubeconfig], check=False, capture_output=True, timeout=120
    )
    client.CoreV1Api(kube_api).delete_namespace(name)


def test_the_api_server_accepts_the_monitoring_objects(release: tuple[str, str], kube_api: Any) -> None:
    name, namespace = release
    custom = client.CustomObjectsApi(kube_api)
    rules = custom.list_namespaced_custom_object("monitoring.coreos.com", "v1", namespace, "prometheusrules")["items"]
    assert [r["metadata"]["name"] for r in rules] == [f"{name}-cdc-operator"]
    assert rules[0]["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert len(rules[0]["spec"]["groups"]) == 2
    pod_monitors = custom.list_namespaced_custom_object("monitoring.coreos.com", "v1", namespace, "podmonitors")
    assert sorted(m["metadata"]["name"] for m in pod_monitors["items"]) == [
        f"{name}-cdc-operator",
        f"{name}-cdc-operator-replicators",
    ]
    service_monitors = custom.list_namespaced_custom_object("monitoring.coreos.com", "v1", namespace, "servicemonitors")
    assert [m["metadata"]["name"] for m in service_monitors["items"]] == [f"{name}-cdc-operator"]
    dashboard = client.CoreV1Api(kube_api).read_namespaced_config_map(f"{name}-cdc-operator-dashboard", namespace)
    assert dashboard.metadata.labels["grafana_dashboard"] == "1"


def test_the_crds_validate_what_they_accept(release: tuple[str, str], kube_api: Any) -> None:
    """The acceptance above means something: the same API server refuses a rule the CRD's schema forbids."""
    _, namespace = release
    bad = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "bad"},
        "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0", "for": "five minutes"}]}]},
    }
    with pytest.raises(ApiException) as refused:
        client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
            "monitoring.coreos.com", "v1", namespace, "prometheusrules", bad
        )
    assert refused.value.status == 422


def test_the_monitors_select_the_pods_and_ports_that_exist(rendered: list[dict[str, Any]]) -> None:
    # Replicators: the pods the operator renders carry the selector's labels and expose the named port,
    # the one the replicator's rendered config listens on.
    replicators = only(rendered, "PodMonitor", "-replicators")
    selector = replicators["spec"]["selector"]["matchLabels"]
    (endpoint,) = replicators["spec"]["podMetricsEndpoints"]
    assert replicators["spec"]["namespaceSelector"] == {"any": True}
    inputs = make_inputs()
    manifests = render_pipeline(inputs)
    deployments = [m for m in manifests if m["kind"] == "Deployment"]
    assert len(deployments) == 3
    for deployment in deployments:
        template = deployment["spec"]["template"]
        assert selector.items() <= template["metadata"]["labels"].items()
        container = next(c for c in template["spec"]["containers"] if c["name"] == "replicator")
        (port,) = [p for p in container["ports"] if p["name"] == endpoint["port"]]
        node = deployment["metadata"]["labels"][names.NODE_LABEL]
        config_map = next(m for m in manifests if m["metadata"]["name"] == names.config_map("shop", node))
        config = yaml.safe_load(config_map["data"]["replicator.yaml"])
        assert port["containerPort"] == config["observability"]["metricsPort"]
    # No other pod of the operator's matches (the checkpoint sidecar has no metrics port of its own).
    # The operator: the chart's Deployment exposes the port both its monitors name, the Service forwards it.
    operator = only(rendered, "Deployment")
    pod = operator["spec"]["template"]
    operator_ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
    pod_monitor = only(rendered, "PodMonitor", "-cdc-operator")
    assert pod_monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] in operator_ports
    service = only(rendered, "Service")
    service_monitor = only(rendered, "ServiceMonitor")
    assert service_monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (service_port,) = service["spec"]["ports"]
    assert service_port["name"] == service_monitor["spec"]["endpoints"][0]["port"]
    assert service_port["targetPort"] in operator_ports


def test_the_replicator_pod_monitor_follows_watched_namespaces(lab: dict[str, Any]) -> None:
    from tests.integration.monitoring.conftest import helm_template

    docs = helm_template(
        lab, "--set", "monitoring.replicators.podMonitor.enabled=true", "--set", "watchNamespaces={team-a,team-b}"
    )
    assert only(docs, "PodMonitor")["spec"]["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}
