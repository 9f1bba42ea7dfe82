"""Cassandra nodes found by label selector (as cass-operator labels its pods), TLS rotation, kubectl explain."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from kubernetes import client

from tests.integration.operator.conftest import Cluster, example

pytestmark = pytest.mark.integration

LABELS = {"cassandra.datastax.com/cluster": "demo", "cassandra.datastax.com/datacenter": "dc1"}


def _cassandra_pod(core: Any, namespace: str, name: str) -> None:
    """A pod labelled as cass-operator labels its Cassandra pods (Pending here: no kubelet)."""
    core.create_namespaced_pod(
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name=name, labels=LABELS),
            spec=client.V1PodSpec(containers=[client.V1Container(name="cassandra", image="cassandra:5.0")]),
        ),
    )


def test_selector_discovery_follows_pods_and_tls_rotation_rolls(
    kube_api: Any, kube_namespace: str, vault: Any, vault_secrets: str, run_operator: Any
) -> None:
    ns = kube_namespace
    k = Cluster(kube_api, ns, run_operator(ns))
    vault.secrets.kv.v2.create_or_update_secret(
        path=f"{vault_secrets}/clickhouse", secret={"username": "ch", "password": "chpw"}
    )
    k.core.create_namespaced_secret(
        ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="demo-superuser"), string_data={"username": "cassandra", "password": "x"}
        ),
    )
    k.core.create_namespaced_secret(
        ns, client.V1Secret(metadata=client.V1ObjectMeta(name="clickhouse-ca"), string_data={"ca.crt": "CA-1"})
    )
    for pod in ("demo-dc1-r1-sts-0", "demo-dc1-r2-sts-0"):
        _cassandra_pod(k.core, ns, pod)
    k.create(example("pipeline-k8ssandra.yaml", vault_secrets))

    k.eventually(
        lambda: set(k.deployments()) == {"orders-demo-dc1-r1-sts-0", "orders-demo-dc1-r2-sts-0"}, "two replicators"
    )
    pod_spec = k.deployments()["orders-demo-dc1-r1-sts-0"].spec.template.spec
    volumes = {v.name: v for v in pod_spec.volumes}
    assert volumes["cdc-raw"].persistent_volume_claim.claim_name == "server-data-demo-dc1-r1-sts-0"
    assert volumes["tls-0"].secret.secret_name == "clickhouse-ca"

    # A node joins, a node leaves: replicators follow.
    _cassandra_pod(k.core, ns, "demo-dc1-r3-sts-0")
    k.eventually(lambda: len(k.deployments()) == 3, "a third replicator for the new pod")
    k.core.delete_namespaced_pod("demo-dc1-r2-sts-0", ns, grace_period_seconds=0)
    k.eventually(lambda: "orders-demo-dc1-r2-sts-0" not in k.deployments(), "the leaving node's replicator to go")
    assert len(k.deployments()) == 2

    # A renewed certificate (cert-manager rewrites the Secret) rolls every replicator, and the operator
    # leaves alone what others own in the template (kubectl rollout restart's annotation).
    restarted = "kubectl.kubernetes.io/restartedAt"
    k.apps.patch_namespaced_deployment(
        "orders-demo-dc1-r1-sts-0", ns, {"spec": {"template": {"metadata": {"annotations": {restarted: "now"}}}}}
    )
    hashes = k.hashes()
    k.core.patch_namespaced_secret("clickhouse-ca", ns, {"stringData": {"ca.crt": "CA-2"}})
    k.wait_for_new_hashes(hashes, "a CA rotation")
    template = k.deployments()["orders-demo-dc1-r1-sts-0"].spec.template
    assert template.metadata.annotations[restarted] == "now"


def test_kubectl_explain_teaches_the_api(lab: dict[str, Any], cdc_crds: None) -> None:
    kubectl = [lab["kubernetes"]["kubectl"], "--kubeconfig", lab["kubernetes"]["kubeconfig"]]
    out = subprocess.run(
        [*kubectl, "explain", "cdcpipeline.spec.destinations"], capture_output=True, text=True, check=True
    ).stdout
    assert "Warehouses to write to" in out
    assert "credentials" in out
    out = subprocess.run(
        [*kubectl, "explain", "maskingpolicy.spec.rules.action"], capture_output=True, text=True, check=True
    ).stdout
    assert "hmac" in out
    listing = subprocess.run(
        [*kubectl, "api-resources", "--categories", "cdc"], capture_output=True, text=True, check=True
    )
    assert "cdcp" in listing.stdout
    assert "mp" in listing.stdout.split()
