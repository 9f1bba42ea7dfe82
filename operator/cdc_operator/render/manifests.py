"""Pure rendering of a pipeline into Kubernetes manifests (plain dicts, ready for server-side apply).

Per pipeline: one Secret with every credential and masking key as environment variables.
Per Cassandra node: a ConfigMap with the replicator config, a checkpoint ConfigMap the sidecar
writes into, a ServiceAccount + Role + RoleBinding letting that sidecar patch exactly that
ConfigMap, and a Deployment (replicator + checkpoint sidecar).

Every object is owned by the pipeline (controller owner reference), so deleting the pipeline
lets the garbage collector remove all of it; no finalizer is needed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cdc_operator.api.base import API_VERSION
from cdc_operator.render import names
from cdc_operator.render.config import (
    CDC_RAW_MOUNT,
    CHECKPOINT_DIR,
    CHECKPOINT_FILE,
    CONFIG_DIR,
    CONFIG_FILE,
    METRICS_PORT,
    replicator_config,
    tls_mount,
)
from cdc_operator.render.inputs import Node, PipelineInputs, tls_secret_names

Manifest = dict[str, Any]


def owner_reference(inputs: PipelineInputs) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "CdcPipeline",
        "name": inputs.name,
        "uid": inputs.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _meta(inputs: PipelineInputs, name: str, component: str, node: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": inputs.namespace,
        "labels": names.labels(inputs.name, component, node),
        "ownerReferences": [owner_reference(inputs)],
    }


def rollout_hash(config_yaml: str, inputs: PipelineInputs) -> str:
    """What the pod template depends on: rendered config, Secret contents, certificate thumbprints and the
    MaskingPolicies' generations. Any change gives a new hash, and the new hash rolls the Deployment."""
    material = {
        "config": config_yaml,
        "secrets": hashlib.sha256(json.dumps(inputs.secret_env, sort_keys=True).encode()).hexdigest(),
        "tls": inputs.tls_thumbprints,
        "policies": {p.name: p.generation for p in inputs.policies},
        "images": [inputs.spec.replicator.image, inputs.spec.replicator.sidecar_image],
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def credentials_secret(inputs: PipelineInputs) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(inputs, names.credentials_secret(inputs.name), "credentials"),
        "type": "Opaque",
        # data, not stringData: server-side apply tracks data, and stringData would be re-sent as a diff.
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(inputs.secret_env.items())},
    }


def config_map(inputs: PipelineInputs, node: Node, config_yaml: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(inputs, names.config_map(inputs.name, node.name), "config", node.name),
        "data": {CONFIG_FILE: config_yaml},
    }


def checkpoint_config_map(inputs: PipelineInputs, node: Node) -> Manifest:
    """Created empty; only the sidecar writes its data. The operator applies it without data, so server-side
    apply never takes ownership of (or clears) the sidecar's field."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(inputs, names.checkpoint_config_map(inputs.name, node.name), "checkpoint", node.name),
    }


def sidecar_rbac(inputs: PipelineInputs, node: Node) -> list[Manifest]:
    """The sidecar may read and patch its own checkpoint ConfigMap, and nothing else."""
    name = names.replicator(inputs.name, node.name)
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(inputs, name, "replicator", node.name),
            # Only the sidecar talks to the API: it gets a projected token, the replicator none.
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(inputs, name, "replicator", node.name),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [names.checkpoint_config_map(inputs.name, node.name)],
                    "verbs": ["get", "patch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(inputs, name, "replicator", node.name),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": inputs.namespace}],
        },
    ]


_RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}


SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# What automountServiceAccountToken would give every container, mounted into the sidecar alone.
_API_ACCESS_VOLUME = {
    "name": "api-access",
    "projected": {
        "sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
        ]
    },
}


def _cdc_raw_volume(node: Node) -> tuple[dict[str, Any], dict[str, Any]]:
    """The volume and its mount. The replicator writes there: it deletes consumed segments."""
    mount: dict[str, Any] = {"name": "cdc-raw", "mountPath": CDC_RAW_MOUNT}
    if node.cdc_raw.host_path is not None:
        volume = {"name": "cdc-raw", "hostPath": {"path": node.cdc_raw.host_path.path, "type": "Directory"}}
    else:
        pvc = node.cdc_raw.persistent_volume_claim
        assert pvc is not None
        volume = {"name": "cdc-raw", "persistentVolumeClaim": {"claimName": pvc.claim_name}}
        if pvc.sub_path:
            mount["subPath"] = pvc.sub_path
    return volume, mount


def _affinity(node: Node) -> dict[str, Any] | None:
    """cdc_raw is node-local (hostPath, or a ReadWriteOnce volume): run next to the Cassandra node."""
    if node.kubernetes_node is None:
        return None
    term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node.kubernetes_node]}]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}


def deployment(inputs: PipelineInputs, node: Node, config_hash: str) -> Manifest:
    spec = inputs.spec
    rep = spec.replicator
    name = names.replicator(inputs.name, node.name)
    selector = {names.PIPELINE_LABEL: inputs.name, names.NODE_LABEL: node.name}
    cdc_volume, cdc_mount = _cdc_raw_volume(node)
    tls_secrets = tls_secret_names(spec)
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": names.config_map(inputs.name, node.name)}},
        cdc_volume,
        {"name": "checkpoint", "emptyDir": {"sizeLimit": "16Mi"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        _API_ACCESS_VOLUME,
    ] + [{"name": f"tls-{i}", "secret": {"secretName": s}} for i, s in enumerate(tls_secrets)]
    replicator_mounts = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        cdc_mount,
        {"name": "checkpoint", "mountPath": CHECKPOINT_DIR},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir: the root filesystem is read-only
    ] + [{"name": f"tls-{i}", "mountPath": tls_mount(s), "readOnly": True} for i, s in enumerate(tls_secrets)]
    env_from = [{"secretRef": {"name": names.credentials_secret(inputs.name)}}] if inputs.secret_env else []
    pod_security: dict[str, Any] = {
        "runAsNonRoot": True,
        "runAsUser": rep.run_as_user,
        "runAsGroup": rep.run_as_user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if rep.fs_group is not None:
        pod_security["fsGroup"] = rep.fs_group
    pod_spec: dict[str, Any] = {
        "serviceAccountName": name,
        "automountServiceAccountToken": False,
        "securityContext": pod_security,
        "terminationGracePeriodSeconds": 60,  # let the replicator commit its last batch
        "containers": [
            {
                "name": "replicator",
                "image": rep.image,
                "imagePullPolicy": rep.image_pull_policy,
                "args": ["run", "--config", f"{CONFIG_DIR}/{CONFIG_FILE}"],
                "envFrom": env_from,
                "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
                "resources": rep.resources.model_dump(mode="json"),
                "securityContext": _RESTRICTED,
                "volumeMounts": replicator_mounts,
            },
            {
                "name": "checkpoint",
                "image": rep.sidecar_image,
                "imagePullPolicy": rep.image_pull_policy,
                "args": [
                    "checkpoint-sidecar",
                    "--file",
                    CHECKPOINT_FILE,
                    "--configmap",
                    names.checkpoint_config_map(inputs.name, node.name),
                ],
                "env": [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
                "resources": {"requests": {"cpu": "10m", "memory": "48Mi"}, "limits": {"memory": "96Mi"}},
                "securityContext": _RESTRICTED,
                "volumeMounts": [
                    {"name": "checkpoint", "mountPath": CHECKPOINT_DIR, "readOnly": True},
                    {"name": "api-access", "mountPath": SA_DIR, "readOnly": True},
                ],
            },
        ],
        "volumes": volumes,
    }
    affinity = _affinity(node)
    if affinity is not None:
        pod_spec["affinity"] = affinity
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(inputs, name, "replicator", node.name),
        "spec": {
            "replicas": 0 if spec.paused else 1,
            # Never two replicators on one cdc_raw: both would consume and delete segments.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": names.labels(inputs.name, "replicator", node.name),
                    "annotations": {names.HASH_ANNOTATION: config_hash},
                },
                "spec": pod_spec,
            },
        },
    }


def render_node(inputs: PipelineInputs, node: Node) -> tuple[list[Manifest], str]:
    """A node's manifests and its rollout hash."""
    config_yaml = replicator_config(inputs, node).to_yaml()
    config_hash = rollout_hash(config_yaml, inputs)
    manifests = [
        config_map(inputs, node, config_yaml),
        checkpoint_config_map(inputs, node),
        *sidecar_rbac(inputs, node),
        deployment(inputs, node, config_hash),
    ]
    return manifests, config_hash


def render_pipeline(inputs: PipelineInputs) -> list[Manifest]:
    """Every manifest of the pipeline, in an order safe to apply (dependencies before Deployments)."""
    out: list[Manifest] = []
    if inputs.secret_env:
        out.append(credentials_secret(inputs))
    for node in inputs.nodes:
        out += render_node(inputs, node)[0]
    return out


def pipeline_hash(inputs: PipelineInputs) -> str:
    """One hash for the whole pipeline (status.configHash): the node hashes combined."""
    node_hashes = [render_node(inputs, n)[1] for n in inputs.nodes]
    return hashlib.sha256("".join(node_hashes).encode()).hexdigest()[:16]
