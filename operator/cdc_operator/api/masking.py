"""The MaskingPolicy kind: which columns are sensitive and what the replicator does with them.

The replicator's masking module (``cdc_replicator.masking``) owns the semantics of the rules; this
is the Kubernetes face of them. Keys and salts are never in the spec: a rule names where they
are (Vault KV or a Secret), the operator copies them into a Secret it owns, and the replicator
reads them from the environment.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from cdc_operator.api.base import ApiModel, cel, validations
from cdc_operator.api.common import ConditionList, SecretKeyRef


class VaultKeyRef(ApiModel):
    """A field of a Vault/OpenBao KV v2 secret."""

    path: str = Field(min_length=1, max_length=512, description="KV v2 path below the operator's mount.")
    key: str = Field(min_length=1, max_length=253, description="Field of the secret holding the key.")


class KeySource(ApiModel):
    """Where a hash salt or HMAC key comes from: exactly one of vault or secretKeyRef."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel("has(self.vault) != has(self.secretKeyRef)", "exactly one of vault or secretKeyRef must be set")
        )
    }

    vault: VaultKeyRef | None = Field(default=None, description="Read the key from Vault/OpenBao.")
    secret_key_ref: SecretKeyRef | None = Field(default=None, description="Read the key from a Secret.")


class MaskingRule(ApiModel):
    """Match columns, then act on their values. The first matching rule of the first policy wins."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel("self.action != 'partial' || has(self.keepLast)", "partial masking needs keepLast"),
            cel("self.action == 'partial' || !has(self.keepLast)", "keepLast is only valid with action partial"),
            cel("self.action != 'hmac' || has(self.key)", "hmac masking needs a key"),
            cel(
                "self.action in ['hash', 'hmac'] || !has(self.key)",
                "key is only valid with action hash or hmac",
            ),
        )
    }

    name: str | None = Field(default=None, max_length=63, description="Optional name, shown in audit logs.")
    keyspace: str = Field(default="*", max_length=128, description="Keyspace name or glob.")
    table: str = Field(default="*", max_length=128, description="Table name or glob.")
    column: str = Field(min_length=1, max_length=256, description="Column name, glob, or regex (columnRegex).")
    column_regex: bool = Field(default=False, description="Interpret column as a regular expression.")
    classification: Literal["PII", "PHI"] | None = Field(default=None, description="What kind of data this is.")
    action: Literal["hash", "hmac", "redact", "partial", "null"] = Field(
        description="hash: salted SHA-256; hmac: HMAC-SHA256 token (deterministic, joins still work); "
        "redact: a fixed marker; partial: keep the last keepLast characters; null: drop the value."
    )
    keep_last: int | None = Field(default=None, ge=0, le=64, description="partial: characters kept at the end.")
    key: KeySource | None = Field(default=None, description="hash: the salt (optional); hmac: the key (required).")


class MaskingPolicySpec(ApiModel):
    """An ordered list of rules."""

    rules: list[MaskingRule] = Field(
        min_length=1, max_length=256, description="Rules in order; the first match decides a column's action."
    )


class MaskingPolicyStatus(ApiModel):
    """Which pipelines use this policy."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    observed_generation: int | None = Field(default=None, description="Generation last seen by the operator.")
    rule_count: int | None = Field(default=None, description="Number of rules.")
    pipeline_count: int | None = Field(default=None, description="Number of CdcPipelines referencing it.")
    pipelines: list[str] = Field(default_factory=list, max_length=256, description="CdcPipelines referencing it.")
    conditions: ConditionList
