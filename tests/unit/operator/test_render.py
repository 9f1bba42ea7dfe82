"""Rendering a pipeline into manifests: pure functions over representative specs."""

from __future__ import annotations

import base64
import copy
import dataclasses
from typing import Any

import pytest
from cdc_operator.render import names
from cdc_operator.render.inputs import PipelineInputs
from cdc_operator.render.manifests import render_pipeline
from cdc_replicator.contract import config as rc

from tests.unit.operator.conftest import example, make_inputs

pytestmark = pytest.mark.unit


def _by_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


def _hashes(inputs: PipelineInputs) -> list[str]:
    return [
        d["spec"]["template"]["metadata"]["annotations"][names.HASH_ANNOTATION]
        for d in _by_kind(render_pipeline(inputs), "Deployment")
    ]


def test_three_nodes_render_three_replicators(three_node_inputs: PipelineInputs) -> None:
    manifests = render_pipeline(three_node_inputs)
    deployments = _by_kind(manifests, "Deployment")
    assert [d["metadata"]["name"] for d in deployments] == ["shop-node1", "shop-node2", "shop-node3"]
    assert len(_by_kind(manifests, "ConfigMap")) == 6  # config + checkpoint per node
    assert len(_by_kind(manifests, "Secret")) == 1
    for m in manifests:
        (owner,) = m["metadata"]["ownerReferences"]
        assert owner["kind"] == "CdcPipeline"
        assert owner["uid"] == three_node_inputs.uid
        assert owner["controller"] is True
        assert m["metadata"]["labels"][names.PIPELINE_LABEL] == "shop"


def test_deployment_is_hardened_and_mounts_the_nodes_cdc_raw(three_node_inputs: PipelineInputs) -> None:
    dep = _by_kind(render_pipeline(three_node_inputs), "Deployment")[1]
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert [c["name"] for c in pod["containers"]] == ["replicator", "checkpoint"]
    for container in pod["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["resources"]["requests"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["cdc-raw"]["hostPath"]["path"] == "/var/tmp/cdc-lab/cassandra/node2/cdc_raw"
    assert volumes["config"]["configMap"]["name"] == "shop-node2-config"
    assert pod["serviceAccountName"] == "shop-node2"
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "shop-credentials"}}]
    # Only the sidecar can reach the API server: no automounted token, a projected one for it alone.
    assert pod["automountServiceAccountToken"] is False
    replicator, sidecar = pod["containers"]
    assert "api-access" not in {m["name"] for m in replicator["volumeMounts"]}
    assert "api-access" in {m["name"] for m in sidecar["volumeMounts"]}


def test_config_map_holds_a_valid_replicator_config(three_node_inputs: PipelineInputs) -> None:
    cm = next(m for m in render_pipeline(three_node_inputs) if m["metadata"]["name"] == "shop-node3-config")
    cfg = rc.parse(cm["data"]["replicator.yaml"])
    assert cfg.source.node_name == "node3"
    assert cfg.pipeline == "team-a/shop"
    assert [d.name for d in cfg.destinations] == ["warehouse", "timeseries"]
    assert cfg.destinations[0].credentials == rc.Credentials(
        username_env="CDC_DEST_WAREHOUSE_USERNAME", password_env="CDC_DEST_WAREHOUSE_PASSWORD"
    )
    assert cfg.destinations[1].tables[0].time_column == "ts"
    (policy,) = cfg.masking.policies
    assert policy.name == "customer-pii"
    assert policy.rules[0].action == "hmac"
    assert policy.rules[0].key_ref == "customer-tokens"
    assert policy.rules[1].keep_last == 4
    assert [(k.name, k.env) for k in cfg.masking.keys] == [("customer-tokens", "CDC_MASK_KEY_CUSTOMER_TOKENS")]
    assert "s3cret" not in cm["data"]["replicator.yaml"]  # secrets only by indirection


def test_secret_holds_every_env_var_the_config_names(three_node_inputs: PipelineInputs) -> None:
    manifests = render_pipeline(three_node_inputs)
    (secret,) = _by_kind(manifests, "Secret")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    cfg = rc.parse(_by_kind(manifests, "ConfigMap")[0]["data"]["replicator.yaml"])
    key_env = cfg.masking.keys[0].env
    named = {key_env, f"{key_env}_VERSION"}
    for dest in cfg.destinations:
        assert dest.credentials is not None
        named |= {dest.credentials.username_env, dest.credentials.password_env}
    assert named == set(data)
    assert data["CDC_DEST_WAREHOUSE_PASSWORD"] == "s3cret-CDC_DEST_WAREHOUSE_PASSWORD"


def test_sidecar_may_patch_only_its_own_checkpoint(three_node_inputs: PipelineInputs) -> None:
    manifests = render_pipeline(three_node_inputs)
    role = next(m for m in _by_kind(manifests, "Role") if m["metadata"]["name"] == "shop-node1")
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["shop-node1-checkpoint"],
            "verbs": ["get", "patch"],
        }
    ]
    checkpoint = next(m for m in manifests if m["metadata"]["name"] == "shop-node1-checkpoint")
    assert "data" not in checkpoint  # the sidecar's field; the operator never overwrites it


def test_paused_scales_to_zero() -> None:
    spec = example("pipeline-three-nodes.yaml")["spec"]
    spec["paused"] = True
    assert {d["spec"]["replicas"] for d in _by_kind(render_pipeline(make_inputs(spec)), "Deployment")} == {0}


def test_rollout_hash_follows_config_secrets_policies_and_certificates(three_node_inputs: PipelineInputs) -> None:
    base = _hashes(three_node_inputs)
    assert len(set(base)) == 3  # per node: the config names the node
    assert _hashes(make_inputs()) == base  # deterministic
    assert _hashes(make_inputs(secret_value="rotated")) != base
    assert _hashes(make_inputs(policy_generation=2)) != base
    assert _hashes(dataclasses.replace(three_node_inputs, tls_thumbprints={"ca": "abc"})) != base
    spec = copy.deepcopy(example("pipeline-three-nodes.yaml")["spec"])
    spec["replicator"]["tuning"] = {"batchSize": 500}
    assert _hashes(make_inputs(spec)) != base


def test_selector_discovery_with_pvc_and_node_affinity() -> None:
    spec = example("pipeline-k8ssandra.yaml")["spec"]
    inputs = make_inputs(spec, pods=[("demo-dc1-r2-sts-0", "worker-b"), ("demo-dc1-r1-sts-0", "worker-a")])
    manifests = render_pipeline(inputs)
    deployments = _by_kind(manifests, "Deployment")
    assert [d["metadata"]["labels"][names.NODE_LABEL] for d in deployments] == [
        "demo-dc1-r1-sts-0",
        "demo-dc1-r2-sts-0",
    ]
    pod = deployments[0]["spec"]["template"]["spec"]
    cdc = next(v for v in pod["volumes"] if v["name"] == "cdc-raw")
    assert cdc["persistentVolumeClaim"]["claimName"] == "server-data-demo-dc1-r1-sts-0"
    assert next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "cdc-raw")["subPath"] == "cdc_raw"
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == ["worker-a"]
    # TLS towards ClickHouse: the CA Secret is mounted and named in the config.
    assert any(v.get("secret", {}).get("secretName") == "clickhouse-ca" for v in pod["volumes"])
    cfg = rc.parse(next(m for m in manifests if m["kind"] == "ConfigMap")["data"]["replicator.yaml"])
    assert cfg.destinations[0].tls is not None
    assert cfg.destinations[0].tls.ca_file == "/etc/cdc/tls/clickhouse-ca/ca.crt"


def test_long_names_stay_valid() -> None:
    long = names.replicator("a-very-long-pipeline-name-that-goes-on-and-on", "cassandra-dc1-rack1-sts-12")
    assert len(long) <= 63
    assert long != names.replicator("a-very-long-pipeline-name-that-goes-on-and-on", "cassandra-dc1-rack1-sts-13")
