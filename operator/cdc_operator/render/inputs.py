"""Everything rendering needs, gathered by the reconciler beforehand, so rendering stays pure.

The reconciler reads the cluster (pods, MaskingPolicies, Secrets) and Vault, and fills a
:class:`PipelineInputs`; ``render`` turns it into manifests without any I/O. Which credentials a
pipeline needs, and under which environment variable each ends up, is decided here
(:func:`credential_needs`), so the reconciler knows what to fetch and the config knows what to name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cdc_operator.api.common import Credentials
from cdc_operator.api.masking import KeySource, MaskingPolicySpec
from cdc_operator.api.pipeline import CdcPipelineSpec, CdcRawVolume, HostPathCdcRaw, PvcCdcRaw
from cdc_operator.render import names


@dataclass(frozen=True)
class Node:
    """A Cassandra node with its cdc_raw resolved (``{node}`` substituted)."""

    name: str
    kubernetes_node: str | None
    cdc_raw: CdcRawVolume


@dataclass(frozen=True)
class Policy:
    """A referenced MaskingPolicy as read from the cluster."""

    name: str
    generation: int
    spec: MaskingPolicySpec


@dataclass(frozen=True)
class SecretSource:
    """A key of a Secret in the pipeline's namespace."""

    secret: str
    key: str

    def describe(self) -> str:
        return f"Secret {self.secret} key {self.key}"


@dataclass(frozen=True)
class VaultSource:
    """A field of a Vault KV v2 secret (``mount`` None: the operator's default KV mount)."""

    path: str
    key: str
    mount: str | None = None

    def describe(self) -> str:
        return f"Vault path {self.path} key {self.key}"


@dataclass(frozen=True)
class MaskingKeyNeed:
    """A masking key or salt: its bytes (re-encoded as base64) and its KV version become two variables."""

    name: str
    env: str
    source: KeySource


@dataclass(frozen=True)
class EnvNeed:
    """One value the replicator reads from its environment, and where the operator gets it."""

    env: str
    source: SecretSource | VaultSource


@dataclass(frozen=True)
class PipelineInputs:
    name: str
    namespace: str
    uid: str
    spec: CdcPipelineSpec
    nodes: list[Node]
    policies: list[Policy] = field(default_factory=list)
    secret_env: dict[str, str] = field(default_factory=dict)
    """Environment variable → value, for every :func:`credential_needs` entry."""
    tls_thumbprints: dict[str, str] = field(default_factory=dict)
    """Referenced TLS Secret name → SHA-256 of its data; part of the rollout hash."""


def _login_needs(creds: Credentials | None, *prefix: str) -> list[EnvNeed]:
    if creds is None:
        return []
    user, password = names.env_name(*prefix, "USERNAME"), names.env_name(*prefix, "PASSWORD")
    if creds.secret_ref is not None:
        ref = creds.secret_ref
        return [
            EnvNeed(user, SecretSource(ref.name, ref.username_key)),
            EnvNeed(password, SecretSource(ref.name, ref.password_key)),
        ]
    assert creds.vault is not None  # the CRD's CEL rule: exactly one source
    vault = creds.vault
    return [
        EnvNeed(user, VaultSource(vault.path, vault.username_key)),
        EnvNeed(password, VaultSource(vault.path, vault.password_key)),
    ]


def masking_key_env(key: str) -> str:
    """The variable holding a masking key (base64); ``<it>_VERSION`` holds the key's KV version."""
    return names.env_name("MASK_KEY", key)


def masking_key_needs(spec: CdcPipelineSpec) -> list[MaskingKeyNeed]:
    return [MaskingKeyNeed(k.name, masking_key_env(k.name), k) for k in spec.masking_keys]


def unconfigured_keys(spec: CdcPipelineSpec, policies: list[Policy]) -> list[str]:
    """Keys or salts the policies name that the pipeline does not say where to find."""
    known = {k.name for k in spec.masking_keys}
    return sorted({ref for p in policies for ref in p.spec.secret_refs()} - known)


def credential_needs(spec: CdcPipelineSpec) -> list[EnvNeed]:
    """Every login the pipeline's replicators need, with its environment variables (masking keys apart:
    :func:`masking_key_needs`)."""
    needs = _login_needs(spec.source.credentials, "CASSANDRA")
    for dest in spec.destinations:
        needs += _login_needs(dest.credentials, "DEST", dest.name)
    return needs


def tls_secret_names(spec: CdcPipelineSpec) -> list[str]:
    """Referenced TLS Secrets, in a stable order."""
    found = {t.secret_name for t in [spec.source.tls, *(d.tls for d in spec.destinations)] if t and t.secret_name}
    return sorted(found)


def resolve_nodes(spec: CdcPipelineSpec, pods: list[tuple[str, str | None]]) -> list[Node]:
    """The pipeline's Cassandra nodes: the explicit list, or the selected pods as (pod name, node name)."""
    source = spec.source
    if source.nodes is not None:
        wanted = [(n.name, n.kubernetes_node, n.cdc_raw or source.cdc_raw) for n in source.nodes]
    else:
        wanted = [(pod, node, source.cdc_raw) for pod, node in sorted(pods)]
    out = []
    for name, kubernetes_node, volume in wanted:
        assert volume is not None  # the CRD's CEL rule: cdcRaw here or on every node
        out.append(Node(name, kubernetes_node, _substitute(volume, name)))
    return out


def _substitute(volume: CdcRawVolume, node: str) -> CdcRawVolume:
    if volume.host_path is not None:
        return CdcRawVolume(host_path=HostPathCdcRaw(path=volume.host_path.path.replace("{node}", node)))
    assert volume.persistent_volume_claim is not None
    pvc = volume.persistent_volume_claim
    return CdcRawVolume(
        persistent_volume_claim=PvcCdcRaw(claim_name=pvc.claim_name.replace("{node}", node), sub_path=pvc.sub_path)
    )
