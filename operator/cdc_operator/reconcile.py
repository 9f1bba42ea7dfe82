"""One idempotent reconcile of a CdcPipeline: gather inputs, render, apply, prune.

Called from every kopf handler (create, update, resume, MaskingPolicy changes) and from the
periodic resync, so it is level-based: it never looks at what changed, only at what should exist.
A missing reference (MaskingPolicy, Secret, Secret key, Vault path) is a user error: it is
reported as :class:`Outcome` with a reason naming the missing thing, the running replicators are
left as they are, and nothing raises (so kopf does not retry in a crash loop).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from cdc_replicator.contract import keycodec
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
    masking_key_needs,
    resolve_nodes,
    tls_secret_names,
    unconfigured_keys,
)
from cdc_operator.render.manifests import pipeline_hash, render_pipeline
from cdc_operator.vault import VaultPathNotFoundError, VaultReader, VaultSecret, VaultUnavailableError

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
        out.append(
            Policy(ref.name, int(obj["metadata"].get("generation", 1)), MaskingPolicySpec.model_validate(obj["spec"]))
        )
    return out


class _Fetcher:
    """Reads each Secret and Vault path once per reconcile, turning absences into MissingReferenceError."""

    def __init__(self, api: client.ApiClient, namespace: str, vault: VaultReader | None) -> None:
        self.api, self.namespace, self.vault = api, namespace, vault
        self._secrets: dict[str, dict[str, str] | None] = {}
        self._vault: dict[tuple[str | None, str], VaultSecret] = {}

    def secret_key(self, src: SecretSource) -> str:
        if src.secret not in self._secrets:
            self._secrets[src.secret] = kube.read_secret(self.api, self.namespace, src.secret)
        data = self._secrets[src.secret]
        if data is None:
            raise MissingReferenceError("SecretNotFound", f"Secret {src.secret} not found")
        if src.key not in data:
            raise MissingReferenceError("SecretKeyNotFound", f"Secret {src.secret} has no key {src.key}")
        return data[src.key]

    def vault_secret(self, path: str, mount: str | None) -> VaultSecret:
        if self.vault is None:
            raise MissingReferenceError("VaultNotConfigured", f"Vault path {path} is referenced; no Vault configured")
        if (mount, path) not in self._vault:
            try:
                self._vault[(mount, path)] = self.vault.read(path, mount)
            except VaultPathNotFoundError as exc:
                raise MissingReferenceError("VaultPathNotFound", str(exc)) from exc
        return self._vault[(mount, path)]

    def vault_key(self, src: VaultSource) -> str:
        secret = self.vault_secret(src.path, src.mount)
        if src.key not in secret.data:
            raise MissingReferenceError("VaultKeyNotFound", f"Vault path {src.path} has no key {src.key}")
        return secret.data[src.key]


def _secret_values(fetch: _Fetcher, spec: CdcPipelineSpec, policies: list[Policy]) -> dict[str, str]:
    """Every environment variable of the credentials Secret: logins, then masking keys with their versions."""
    env: dict[str, str] = {}
    for need in credential_needs(spec):
        src = need.source
        env[need.env] = fetch.secret_key(src) if isinstance(src, SecretSource) else fetch.vault_key(src)
    missing = unconfigured_keys(spec, policies)
    if missing:
        raise MissingReferenceError(
            "MaskingKeyNotConfigured", f"masking keys named by the policies but not in spec.maskingKeys: {missing}"
        )
    for key in masking_key_needs(spec):
        ks = key.source
        secret = fetch.vault_secret(ks.path, ks.mount)
        where = f"masking key {key.name} at Vault path {ks.mount}/{ks.path} field {ks.field}"
        if ks.field not in secret.data:
            raise MissingReferenceError("VaultKeyNotFound", f"{where}: no such field")
        try:
            raw = keycodec.decode_key(secret.data[ks.field], ks.encoding, where)
        except keycodec.InvalidKeyError as exc:  # its message names the key and path, never the bytes
            raise MissingReferenceError("MaskingKeyInvalid", str(exc)) from None
        # One encoding for the replicator (base64), whatever Vault stores; the version goes into HMAC tokens.
        env[key.env] = base64.b64encode(raw).decode()
        env[f"{key.env}_VERSION"] = str(secret.version)
    return env


def _tls_thumbprints(api: client.ApiClient, namespace: str, spec: CdcPipelineSpec) -> dict[str, str]:
    """SHA-256 of each referenced TLS Secret's data, after checking it holds the keys the config names."""
    needed: dict[str, set[str]] = {}
    for tls in [spec.source.tls, *(d.tls for d in spec.destinations)]:
        if tls is not None and tls.secret_name is not None:
            keys = needed.setdefault(tls.secret_name, set())
            keys.add(tls.ca_key)
            if tls.client_certificate:
                keys |= {"tls.crt", "tls.key"}
    out = {}
    for name in tls_secret_names(spec):
        data = kube.read_secret(api, namespace, name)
        if data is None:
            raise MissingReferenceError("SecretNotFound", f"TLS Secret {name} not found")
        missing = sorted(needed.get(name, set()) - set(data))
        if missing:
            raise MissingReferenceError("SecretKeyNotFound", f"TLS Secret {name} has no key {', '.join(missing)}")
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
        secret_env=_secret_values(_Fetcher(api, namespace, vault), spec, policies),
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
