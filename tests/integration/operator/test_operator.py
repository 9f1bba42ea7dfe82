"""The operator as a process against the lab: chart RBAC, Vault via Kubernetes auth, rollouts, status, GC.

One test walks a pipeline through its life (a namespace and an operator start cost seconds on a
shared machine); each step asserts behaviour, never timings.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cdc_operator.api.base import GROUP, VERSION
from cdc_operator.render import names
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.integration.operator.conftest import (
    CDC_OPERATOR,
    KEY_1,
    TIMEOUT,
    Cluster,
    eventually,
    example,
    free_port,
    service_account_kubeconfig,
)

pytestmark = pytest.mark.integration


def _publish_checkpoint(
    kube_api: Any, lab: dict[str, Any], namespace: str, tmp_path: Path, updated_at: datetime
) -> None:
    """Run the real sidecar with node1's own ServiceAccount (proving its Role suffices) until it published."""
    sa = names.replicator("shop", "node1")
    kubeconfig = tmp_path / "sidecar.kubeconfig"
    service_account_kubeconfig(kube_api, lab, namespace, sa, kubeconfig)
    report = {
        "node": "node1",
        "updatedAt": updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "destinations": [
            {"name": "warehouse", "position": "1712:4096", "lagSeconds": 1.5, "eventsTotal": 10},
            {"name": "timeseries", "position": "1712:2048", "lagSeconds": 2.5, "lastError": None},
        ],
    }
    text = json.dumps(report)
    checkpoint = tmp_path / "checkpoint.json"
    checkpoint.write_text(text)
    configmap = names.checkpoint_config_map("shop", "node1")
    args = [str(CDC_OPERATOR), "checkpoint-sidecar", "--file", str(checkpoint), "--interval", "0.2"]
    args += ["--configmap", configmap, "--namespace", namespace]
    core = client.CoreV1Api(kube_api)
    log = tmp_path / "sidecar.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env={**os.environ, "KUBECONFIG": str(kubeconfig)}, stdout=out, stderr=out)
    try:
        eventually(
            lambda: (core.read_namespaced_config_map(configmap, namespace).data or {}).get("checkpoint.json") == text,
            TIMEOUT,
            f"the sidecar to publish the checkpoint; its log:\n{log.read_text() if log.exists() else ''}",
        )
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert "cannot patch" not in log.read_text()


def test_pipeline_lifecycle(
    kube_api: Any,
    kube_namespace: str,
    lab: dict[str, Any],
    vault: Any,
    vault_secrets: str,
    run_operator: Any,
    tmp_path: Path,
) -> None:
    ns = kube_namespace
    operator = run_operator(ns, stale_seconds=60)
    k = Cluster(kube_api, ns, operator)
    k.core.create_namespaced_secret(
        ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="timescale-login"), string_data={"username": "ts", "password": "tpw"}
        ),
    )
    k.create(example("masking-policy.yaml", vault_secrets))
    pipeline = k.create(example("pipeline-three-nodes.yaml", vault_secrets))
    uid = pipeline["metadata"]["uid"]
    assert not pipeline["metadata"].get("finalizers")

    # Three replicators, each with its config, checkpoint ConfigMap and RBAC; one credentials Secret.
    k.eventually(lambda: len(k.deployments()) == 3, "three Deployments")
    for node in ("node1", "node2", "node3"):
        cm = k.core.read_namespaced_config_map(names.config_map("shop", node), ns)
        config = yaml.safe_load(cm.data["replicator.yaml"])
        assert config["source"]["nodeName"] == node
        assert config["source"]["cdcRawPath"] == "/var/lib/cassandra/cdc_raw"
        for obj in (
            cm,
            k.deployments()[f"shop-{node}"],
            k.core.read_namespaced_config_map(f"shop-{node}-checkpoint", ns),
        ):
            (ref,) = obj.metadata.owner_references
            assert (ref.kind, ref.uid, ref.controller) == ("CdcPipeline", uid, True)
        volumes = {v.name: v for v in k.deployments()[f"shop-{node}"].spec.template.spec.volumes}
        assert volumes["cdc-raw"].host_path.path == f"/var/tmp/cdc-lab/cassandra/{node}/cdc_raw"
    secret = k.core.read_namespaced_secret("shop-credentials", ns)
    assert secret.metadata.owner_references[0].uid == uid
    values = {key: base64.b64decode(v).decode() for key, v in secret.data.items()}
    assert values["CDC_DEST_WAREHOUSE_PASSWORD"] == "pw-1"  # from OpenBao via Kubernetes auth
    assert values["CDC_DEST_TIMESERIES_USERNAME"] == "ts"  # from the referenced Secret
    assert values["CDC_MASK_KEY_CUSTOMER_TOKENS"] == KEY_1  # masking key, re-encoded as base64
    assert values["CDC_MASK_KEY_CUSTOMER_TOKENS_VERSION"] == "1"  # its KV version, for HMAC tokens

    # Status and printer columns (no kubelet: replicators never become ready here).
    k.eventually(lambda: k.condition("Ready").get("reason") == "ReplicatorsNotReady", "Ready=False ReplicatorsNotReady")
    status = k.pipeline()["status"]
    assert (status["observedGeneration"], status["replicators"], status["destinationCount"]) == (1, "0/3", 2)
    assert not k.pipeline()["metadata"].get("finalizers")  # deletion never waits for the operator
    kubectl = [lab["kubernetes"]["kubectl"], "--kubeconfig", lab["kubernetes"]["kubeconfig"], "-n", ns]
    table = subprocess.run([*kubectl, "get", "cdcp", "-o", "wide"], capture_output=True, text=True, check=True).stdout
    header = table.splitlines()[0].split()
    for column in ("READY", "PHASE", "REPLICATORS", "MAX", "DESTINATIONS", "AGE", "NODES", "REASON", "PAUSED"):
        assert column in header
    assert "ReplicatorsNotReady" in table
    policy = k.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "maskingpolicies", "customer-pii")
    k.eventually(
        lambda: (
            (
                k.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "maskingpolicies", "customer-pii").get(
                    "status", {}
                )
            ).get("pipelines")
            == ["shop"]
        ),
        "MaskingPolicy status to list the pipeline",
    )

    # A checkpoint published by the real sidecar (with its own least-privilege ServiceAccount) shows in status.
    _publish_checkpoint(kube_api, lab, ns, tmp_path, datetime.now(UTC))
    k.eventually(lambda: k.pipeline()["status"].get("maxLagSeconds") == 2.5, "the checkpoint's lag in status")
    node1 = next(n for n in k.pipeline()["status"]["nodes"] if n["node"] == "node1")
    assert node1["destinations"][0] == {"name": "warehouse", "position": "1712:4096", "lagSeconds": 1.5}
    # An old checkpoint turns the pipeline Degraded.
    _publish_checkpoint(kube_api, lab, ns, tmp_path, datetime.now(UTC) - timedelta(hours=1))
    k.eventually(lambda: k.condition("Degraded").get("reason") == "CheckpointStale", "Degraded=True CheckpointStale")
    assert k.condition("Degraded")["status"] == "True"

    # Editing the MaskingPolicy, rotating the Vault secret, and editing the pipeline each roll every replicator.
    hashes = k.hashes()
    k.patch(
        "maskingpolicies",
        "customer-pii",
        {"spec": {"rules": [*policy["spec"]["rules"][:1], *policy["spec"]["rules"][2:]]}},
    )
    hashes = k.wait_for_new_hashes(hashes, "a MaskingPolicy edit")
    vault.secrets.kv.v2.create_or_update_secret(
        path=f"{vault_secrets}/postgres", secret={"username": "cdc", "password": "pw-2"}
    )
    hashes = k.wait_for_new_hashes(hashes, "a Vault rotation")
    k.patch("cdcpipelines", "shop", {"spec": {"replicator": {"tuning": {"batchSize": 500}}}})
    hashes = k.wait_for_new_hashes(hashes, "a pipeline edit")
    k.eventually(lambda: k.pipeline()["status"]["observedGeneration"] == 2, "observedGeneration 2")

    # Pausing scales to zero and says so.
    k.patch("cdcpipelines", "shop", {"spec": {"paused": True}})
    k.eventually(lambda: {d.spec.replicas for d in k.deployments().values()} == {0}, "replicas 0")
    k.eventually(lambda: k.condition("Paused").get("status") == "True", "Paused=True")
    assert k.pipeline()["status"]["phase"] == "Paused"

    # A node leaving the spec loses its replicator and everything that came with it.
    nodes = [{"name": "node1"}, {"name": "node2"}]
    k.patch("cdcpipelines", "shop", {"spec": {"source": {"nodes": nodes}}})
    k.eventually(lambda: set(k.deployments()) == {"shop-node1", "shop-node2"}, "node3's Deployment to be pruned")
    assert not [cm for cm in k.core.list_namespaced_config_map(ns).items if "node3" in cm.metadata.name]

    # Deleting the pipeline leaves nothing behind (owner references; the controller-manager collects).
    k.custom.delete_namespaced_custom_object(GROUP, VERSION, ns, "cdcpipelines", "shop")
    selector = f"{names.PIPELINE_LABEL}=shop"
    k.eventually(
        lambda: (
            not k.apps.list_namespaced_deployment(ns, label_selector=selector).items
            and not k.core.list_namespaced_config_map(ns, label_selector=selector).items
            and not k.core.list_namespaced_secret(ns, label_selector=selector).items
            and not k.core.list_namespaced_service_account(ns, label_selector=selector).items
        ),
        "garbage collection of everything the pipeline owned",
    )
    # The policy no longer lists it; the operator never added a finalizer, and the chart's RBAC sufficed.
    k.eventually(
        lambda: (
            (
                k.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "maskingpolicies", "customer-pii")["status"]
            ).get("pipelines")
            == []
        ),
        "MaskingPolicy status to drop the deleted pipeline",
    )
    assert "forbidden" not in operator.log_path.read_text().lower()
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=10).read().decode()
    assert 'cdc_operator_reconciliations_total{kind="CdcPipeline",result="success"}' in metrics
    assert "cdc_operator_pipelines{" in metrics
    liveness = urllib.request.urlopen(f"http://127.0.0.1:{operator.liveness_port}/healthz", timeout=10)
    assert liveness.status == 200


def test_missing_references_set_ready_false_with_a_reason(
    kube_api: Any, kube_namespace: str, vault_secrets: str, run_operator: Any
) -> None:
    ns = kube_namespace
    k = Cluster(kube_api, ns, run_operator(ns))
    body = example("pipeline-three-nodes.yaml", vault_secrets)
    k.create(body)

    def reason() -> str:
        return str(k.condition("Ready").get("reason"))

    k.eventually(lambda: reason() == "MaskingPolicyNotFound", "MaskingPolicyNotFound")
    assert "customer-pii" in k.condition("Ready")["message"]
    k.create(example("masking-policy.yaml", vault_secrets))
    k.eventually(lambda: reason() == "SecretNotFound", "SecretNotFound once the policy exists")
    assert "timescale-login" in k.condition("Ready")["message"]
    k.core.create_namespaced_secret(
        ns, client.V1Secret(metadata=client.V1ObjectMeta(name="timescale-login"), string_data={"username": "u"})
    )
    k.eventually(lambda: reason() == "SecretKeyNotFound", "SecretKeyNotFound (no password key)")
    k.core.patch_namespaced_secret("timescale-login", ns, {"stringData": {"password": "p"}})
    k.patch(
        "cdcpipelines",
        "shop",
        {
            "spec": {
                "destinations": [
                    {**body["spec"]["destinations"][0], "credentials": {"vault": {"path": f"{vault_secrets}/nope"}}},
                    body["spec"]["destinations"][1],
                ]
            }
        },
    )
    k.eventually(lambda: reason() == "VaultPathNotFound", "VaultPathNotFound")
    assert not k.deployments()  # nothing rendered from a pipeline whose references never resolved
    assert k.pipeline()["status"]["phase"] == "Failed"
    with pytest.raises(ApiException):
        k.core.read_namespaced_secret("shop-credentials", ns)


def test_vault_outage_degrades_but_keeps_replicators(
    kube_api: Any, kube_namespace: str, vault_secrets: str, run_operator: Any
) -> None:
    ns = kube_namespace
    k = Cluster(kube_api, ns, run_operator(ns))
    login = {"username": "ts", "password": "tpw"}
    k.core.create_namespaced_secret(
        ns, client.V1Secret(metadata=client.V1ObjectMeta(name="timescale-login"), string_data=login)
    )
    k.create(example("masking-policy.yaml", vault_secrets))
    k.create(example("pipeline-three-nodes.yaml", vault_secrets))
    k.eventually(lambda: len(k.deployments()) == 3, "three Deployments")
    hashes = k.hashes()
    k.operator.stop()

    # The same operator, but Vault is unreachable: a transient problem, not a reason to touch running replicators.
    k.operator = run_operator(ns, vault_addr=f"http://127.0.0.1:{free_port()}")
    k.eventually(lambda: k.condition("Degraded").get("reason") == "VaultUnavailable", "Degraded=True VaultUnavailable")
    assert k.condition("Degraded")["status"] == "True"
    assert k.hashes() == hashes
    assert k.operator.proc.poll() is None
