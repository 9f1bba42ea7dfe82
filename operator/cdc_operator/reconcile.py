"""One idempotent reconcile of a CdcPipeline: gather inputs, render, apply, prune.

Called from every kopf handler (create, update, resume, MaskingPolicy changes) and from the
periodic resync, so it is level-based: it never looks at what changed, only at what should exist.
A missing reference (MaskingPolicy, Secret, Secret key, Vault path) is a user error: it is
reported as :class:`Outcome` with a reason naming the missing thing, the running replicators are
left as they are, and nothing raises (so kopf does not retry in a crash loop).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from pydantic import ValidationError

from cdc_operator import kube
from cdc_operator.api.masking import MaskingPolicySpec
from cdc_operator.api.pipeline import CdcPipelineSpec
from cdc_operator.render import names
from cdc_operator.render.inputs import (
    Node,
    PipelineInputs,
    Policy,
    SecretSource,
    VaultSource,
    credential_needs,
    resolve_nodes,
    tls_secret_names,
)
from cdc_operator.render.manifests import pipeline_hash, render_pipeline
from cdc_operator.vault import VaultPathNotFoundError, VaultReader, VaultUnavailableError

log = logging.getLogger(__name__)


class MissingReferenceError(Exception):
    """A reference the pipeline makes cannot be resolved; ``reason`` is a condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Outcome:
    """What a reconcile achieved, for the status."""

    ok: bool
    reason: str = "Reconciled"
    message: str = ""
    transient: bool = False
    config_hash: str | None = None
    nodes: list[str] = field(default_factory=list)


def _pods(api: client.ApiClient, namespace: str, spec: CdcPipelineSpec) -> list[tuple[str, str | None]]:
    selector = spec.source.pod_selector
    if selector is None:
        return []
    parts = [f"{k}={v}" for k, v in sorted(selector.match_labels.items())]
    for req in selector.match_expressions:
        if req.operator in ("In", "NotIn"):
            parts.append(f"{req.key} {req.operator.lower()} ({','.join(req.values)})")
        else:
            parts.append(req.key if req.operator == "Exists" else f"!{req.key}")
    pods = kube.list_objects(api, kube.PODS, namespace, ",".join(parts))
    # A pod being deleted is a node leaving; one not yet scheduled has no node to pin to yet, but its PVC
    # already exists, so it still gets a replicator (the scheduler waits for the node affinity to be known).
    return [
        (p["metadata"]["name"], p["spec"].get("nodeName")) for p in pods if not p["metadata"].get("deletionTimestamp")
    ]


def _policies(api: client.ApiClient, namespace: str, spec: CdcPipelineSpec) -> list[Policy]:
    out = []
    for ref in spec.masking_policy_refs:
        obj = kube.get(api, kube.POLICIES, namespace, ref.name)
        if obj is None:
            raise MissingReferenceError("MaskingPolicyNotFound", f"MaskingPolicy {ref.name} not found")
        out.append(Policy(ref.name, int(obj["metadata"].get("generation", 1)), MaskingPolicySpec(**obj["spec"])))
    return out


def _secret_values(
    api: client.ApiClient, namespace: str, spec: CdcPipelineSpec, policies: list[Policy], vault: VaultReader | None
) -> dict[str, str]:
    secrets: dict[str, dict[str, str] | None] = {}
    paths: dict[str, dict[str, str]] = {}
    env: dict[str, str] = {}
    for need in credential_needs(spec, policies):
        src = need.source
        if isinstance(src, SecretSource):
            if src.secret not in secrets:
                secrets[src.secret] = kube.read_secret(api, namespace, src.secret)
            data = secrets[src.secret]
            if data is None:
                raise MissingReferenceError("SecretNotFound", f"Secret {src.secret} not found")
            if src.key not in data:
                raise MissingReferenceError("SecretKeyNotFound", f"Secret {src.secret} has no key {src.key}")
            env[need.env] = data[src.key]
        else:
            assert isinstance(src, VaultSource)
            if vault is None:
                raise MissingReferenceError(
                    "VaultNotConfigured", f"{src.describe()} is referenced but the operator has no Vault"
                )
            if src.path not in paths:
                try:
                    paths[src.path] = vault.read(src.path)
                except VaultPathNotFoundError as exc:
                    raise MissingReferenceError("VaultPathNotFound", str(exc)) from exc
            if src.key not in paths[src.path]:
                raise MissingReferenceError("VaultKeyNotFound", f"Vault path {src.path} has no key {src.key}")
            env[need.env] = paths[src.path][src.key]
    return env


def _tls_thumbprints(api: client.ApiClient, namespace: str, spec: CdcPipelineSpec) -> dict[str, str]:
    out = {}
    for name in tls_secret_names(spec):
        data = kube.read_secret(api, namespace, name)
        if data is None:
            raise MissingReferenceError("SecretNotFound", f"TLS Secret {name} not found")
        out[name] = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return out


def gather(api: client.ApiClient, body: dict[str, Any], vault: VaultReader | None) -> PipelineInputs:
    """Read everything the render needs; raises MissingReferenceError for what is missing."""
    meta = body["metadata"]
    namespace = meta["namespace"]
    try:
        spec = CdcPipelineSpec.model_validate(body["spec"])
    except ValidationError as exc:  # the CRD schema should have stopped this; say so rather than crash
        raise MissingReferenceError("InvalidSpec", str(exc).splitlines()[0]) from exc
    policies = _policies(api, namespace, spec)
    nodes: list[Node] = resolve_nodes(spec, _pods(api, namespace, spec))
    return PipelineInputs(
        name=meta["name"],
        namespace=namespace,
        uid=meta["uid"],
        spec=spec,
        nodes=nodes,
        policies=policies,
        secret_env=_secret_values(api, namespace, spec, policies, vault),
        tls_thumbprints=_tls_thumbprints(api, namespace, spec),
    )


def _prune(api: client.ApiClient, inputs: PipelineInputs, wanted: set[tuple[str, str]]) -> None:
    """Delete what this pipeline owns but no longer wants (a node that left, a Secret no longer needed)."""
    selector = f"{names.PIPELINE_LABEL}={inputs.name}"
    for kind in kube.OWNED_KINDS:
        for obj in kube.list_objects(api, kind, inputs.namespace, selector):
            meta = obj["metadata"]
            owned = any(ref.get("uid") == inputs.uid for ref in meta.get("ownerReferences", []))
            if owned and (kind.kind, meta["name"]) not in wanted:
                log.info("deleting %s %s/%s: no longer wanted", kind.kind, inputs.namespace, meta["name"])
                kube.delete(api, kind, inputs.namespace, meta["name"])


def reconcile(api: client.ApiClient, body: dict[str, Any], vault: VaultReader | None) -> Outcome:
    """Make the cluster match the pipeline. Never raises for user errors; API errors propagate (kopf retries)."""
    try:
        inputs = gather(api, body, vault)
    except MissingReferenceError as exc:
        return Outcome(ok=False, reason=exc.reason, message=exc.message)
    except VaultUnavailableError as exc:
        return Outcome(ok=False, reason="VaultUnavailable", message=str(exc), transient=True)
    manifests = render_pipeline(inputs)
    for manifest in manifests:
        kube.apply(api, manifest)
    _prune(api, inputs, {(m["kind"], m["metadata"]["name"]) for m in manifests})
    return Outcome(ok=True, config_hash=pipeline_hash(inputs), nodes=[n.name for n in inputs.nodes])
