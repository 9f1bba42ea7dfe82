"""Names and labels of everything the operator creates for a pipeline.

Every owned object carries the pipeline label, so the operator can list what it owns and delete
what it no longer wants (a removed Cassandra node) without remembering anything itself.
"""

from __future__ import annotations

import hashlib

from cdc_operator.api.base import GROUP

PIPELINE_LABEL = f"{GROUP}/pipeline"
NODE_LABEL = f"{GROUP}/node"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY = "cdc-operator"
HASH_ANNOTATION = f"{GROUP}/config-hash"
CHECKPOINT_DATA_KEY = "checkpoint.json"


def dns_name(*parts: str, max_length: int = 63) -> str:
    """Join parts with '-'; if too long, keep a prefix and a short hash so names stay unique."""
    name = "-".join(parts)
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: max_length - 9].rstrip('-')}-{digest}"


def replicator(pipeline: str, node: str) -> str:
    """The Deployment (and its ServiceAccount, Role, RoleBinding) of one node's replicator."""
    return dns_name(pipeline, node)


def config_map(pipeline: str, node: str) -> str:
    """The ConfigMap holding one node's rendered replicator config."""
    return dns_name(pipeline, node, "config")


def checkpoint_config_map(pipeline: str, node: str) -> str:
    """The ConfigMap the node's checkpoint sidecar writes into."""
    return dns_name(pipeline, node, "checkpoint")


def credentials_secret(pipeline: str) -> str:
    """The Secret holding every credential and masking key of the pipeline, as environment variables."""
    return dns_name(pipeline, "credentials")


def env_name(*parts: str) -> str:
    """An environment variable name from free-form parts (destination names may contain '-')."""
    raw = "_".join(["CDC", *parts]).upper()
    return "".join(c if c.isalnum() else "_" for c in raw)


def labels(pipeline: str, component: str, node: str | None = None) -> dict[str, str]:
    out = {
        "app.kubernetes.io/name": "cdc-replicator",
        "app.kubernetes.io/instance": pipeline,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        COMPONENT_LABEL: component,
        PIPELINE_LABEL: pipeline,
    }
    if node is not None:
        out[NODE_LABEL] = node
    return out
