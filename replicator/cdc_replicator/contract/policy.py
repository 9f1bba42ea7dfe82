"""The masking policy: which columns to mask, how, and where the keys come from.

These pydantic models are the single source of the ``MaskingPolicy`` CRD's spec (the operator
generates the OpenAPI schema from ``MaskingPolicySpec.model_json_schema()``), so they stay
JSON-schema friendly: plain strings, integers, lists and enums; every field has a description
(``kubectl explain`` shows it); CRD field names are camelCase (``keepLast``, ``keyRef``),
and Python code may use either the alias or the snake_case name.

Validation here is what needs no Cassandra schema (names unique, the parameters an action
needs are present, regexes compile). Whether an action fits a column's CQL type is checked
when the policy is compiled against the tables (``cdc_replicator.masking.rules``).

Example (YAML, as in the CRD)::

    rules:
      - name: customer-email
        classification: PII
        match: {keyspace: shop, table: customers, column: email}
        action: hmac
        keyRef: customer-tokens
      - name: card-number
        classification: PII
        match: {keyspace: shop, table: "*", columnRegex: "card_(number|pan)"}
        action: partial
        keepLast: 4
      - name: diagnosis-codes
        classification: PHI
        match: {keyspace: clinic, table: visits, column: codes, path: [value]}
        action: hash
        saltRef: clinic-salt
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from cdc_replicator.contract.base import ContractModel

# Names of rules and keys end up in metric labels and log lines: keep them to a tame alphabet.
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$"
DEFAULT_MARKER = "[REDACTED]"
SERVICE_ACCOUNT_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path


class Classification(StrEnum):
    """What kind of sensitive data a rule protects (reported in audit logs and metrics)."""

    PII = "PII"
    PHI = "PHI"


class Action(StrEnum):
    """How a matched value is masked."""

    HASH = "hash"
    """SHA-256 over a secret salt and the value, hex-encoded (64 characters)."""
    HMAC = "hmac"
    """HMAC-SHA256 with a named key: ``v<key version>:<hex>``; deterministic, so tokens join."""
    REDACT = "redact"
    """A fixed marker replaces the value."""
    PARTIAL = "partial"
    """Text only: keep the last ``keepLast`` characters, replace the others by ``maskChar``."""
    NULL = "null"
    """The value becomes null. Over a whole column, the cells' liveness is kept (the destination
    holds presence flags, shown as NULL) so rows alive only through the column stay; except for
    non-frozen sets and maps, whose elements are values: those are left out (see ``cdc_replicator.masking.rules``)."""


DETERMINISTIC_INJECTIVE = frozenset({Action.HASH, Action.HMAC})
"""Actions that map distinct values to distinct outputs, the only ones allowed where values
identify rows or elements (primary-key columns, map keys, set elements)."""


class ColumnMatch(ContractModel):
    """Which columns (and optionally which part of a collection or UDT column) a rule masks."""

    keyspace: str = Field(
        default="*",
        min_length=1,
        max_length=256,
        description="Keyspace name or glob pattern (`*`, `?`, `[abc]`; case-sensitive). Default: every keyspace.",
    )
    table: str = Field(
        default="*",
        min_length=1,
        max_length=256,
        description="Table name or glob pattern (case-sensitive). Default: every table.",
    )
    column: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="Column name or glob pattern (case-sensitive). Exactly one of `column` and `columnRegex`.",
    )
    column_regex: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Python regular expression that must match the whole column name. "
        "Exactly one of `column` and `columnRegex`.",
    )
    path: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=list,
        max_length=16,
        description="Steps into a collection, tuple or UDT column; empty masks the whole column. "
        "Steps: `element` (every list, set or vector element), `key` / `value` (every map key / value), "
        "`value[<key>]` (the value under one map key, compared as text), a UDT field name, or a tuple "
        "index (`0`, `1`, ...). Example: `[value, email]` masks the `email` field of every value of a "
        "`map<text, frozen<contact>>`; `['value[ssn]']` masks `attributes['ssn']` only.",
    )

    @field_validator("column_regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"columnRegex {value!r} is not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_column_selector(self) -> Self:
        if (self.column is None) == (self.column_regex is None):
            raise ValueError("set exactly one of column and columnRegex")
        return self


class MaskingRule(ContractModel):
    """One rule: the columns it matches, their classification, and the action masking them."""

    name: str = Field(
        pattern=NAME_PATTERN,
        max_length=63,
        description="Unique name within the policy; names the rule in errors, audit logs and metrics.",
    )
    classification: Classification = Field(description="`PII` or `PHI`.")
    match: ColumnMatch = Field(description="The columns this rule masks.")
    action: Action = Field(description="`hash`, `hmac`, `redact`, `partial` or `null`.")
    key_ref: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        max_length=63,
        description="hmac only (required): name of the HMAC key, as listed in the pipeline's masking keys.",
    )
    salt_ref: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        max_length=63,
        description="hash only (required): name of the salt, as listed in the pipeline's masking keys.",
    )
    keep_last: int | None = Field(
        default=None,
        ge=0,
        le=1024,
        description="partial only (required): how many trailing characters stay visible. "
        "Values no longer than this are masked entirely.",
    )
    mask_char: str | None = Field(
        default=None,
        min_length=1,
        max_length=1,
        description="partial only: the character replacing masked characters (default `*`).",
    )
    marker: str | None = Field(
        default=None,
        max_length=256,
        description=f"redact only: the text replacing the value (default `{DEFAULT_MARKER}`).",
    )

    @model_validator(mode="after")
    def _parameters_fit_action(self) -> Self:
        # Each parameter belongs to exactly one action; a stray one is almost always a typo'd action.
        owners = {"key_ref": Action.HMAC, "salt_ref": Action.HASH, "keep_last": Action.PARTIAL}
        owners |= {"mask_char": Action.PARTIAL, "marker": Action.REDACT}
        for field_name, owner in owners.items():
            alias = to_camel(field_name)
            if getattr(self, field_name) is not None and self.action != owner:
                raise ValueError(
                    f"rule {self.name!r}: {alias} applies to action {owner.value}, not {self.action.value}"
                )
        required = {Action.HMAC: "key_ref", Action.HASH: "salt_ref", Action.PARTIAL: "keep_last"}
        needed = required.get(self.action)
        if needed is not None and getattr(self, needed) is None:
            raise ValueError(f"rule {self.name!r}: action {self.action.value} requires {to_camel(needed)}")
        return self

    @property
    def secret_ref(self) -> str | None:
        """The key or salt this rule needs, if any."""
        return self.key_ref if self.action == Action.HMAC else self.salt_ref if self.action == Action.HASH else None


class MaskingPolicySpec(ContractModel):
    """The spec of a ``MaskingPolicy``: an ordered list of rules.

    For each column the first matching rule masks it. Rules with a ``path`` mask parts of a
    column; a matching rule without ``path`` masks the whole column and wins over path rules.
    """

    rules: list[MaskingRule] = Field(
        default_factory=list,
        max_length=512,
        description="Rules in priority order: for each column (and path) the first matching rule applies.",
        # Unique names, enforced by the API server itself (a CEL rule comparing all pairs costs too much).
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule names must be unique: {rule.name!r} appears twice")
            seen.add(rule.name)
        return self

    def secret_refs(self) -> set[str]:
        """Every key and salt name the rules reference."""
        return {ref for rule in self.rules if (ref := rule.secret_ref) is not None}


class KeyEncoding(StrEnum):
    """How the key material is written in the Vault field."""

    BASE64 = "base64"
    HEX = "hex"
    UTF8 = "utf8"


class KeySource(ContractModel):
    """Where a named HMAC key or salt lives: one field of a KV v2 secret in Vault/OpenBao.

    The KV version of the secret is the key's version (``v<version>:`` in HMAC outputs), so
    keep one key per secret path: writing any field bumps the version of every field.
    """

    name: str = Field(pattern=NAME_PATTERN, description="The name rules use in `keyRef` / `saltRef`.")
    mount: str = Field(default="secret", min_length=1, description="Mount point of the KV v2 engine.")
    path: str = Field(min_length=1, description="Secret path under the mount, e.g. `cdc/masking/customer-tokens`.")
    field: str = Field(default="key", min_length=1, description="Field of the secret holding the key material.")
    encoding: KeyEncoding = Field(
        default=KeyEncoding.BASE64,
        description="How the field's value encodes the key bytes: `base64` (default), `hex` or `utf8`.",
    )

    @field_validator("path")
    @classmethod
    def _relative_path(cls, value: str) -> str:
        return value.strip("/")


class MaskingKeys(ContractModel):
    """The named keys and salts of a pipeline, configured apart from the policy that uses them."""

    keys: list[KeySource] = Field(default_factory=list, description="Named keys and salts and their Vault location.")

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [k.name for k in self.keys]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"key names must be unique: {', '.join(duplicates)}")
        return self


# Where Vault is and how to log in: plain settings (no hvac here), so the replicator's config
# file can embed them; ``cdc_replicator.masking.keys.VaultKeyStore`` uses them.


class VaultAuth(ContractModel):
    """How the replicator logs in to Vault."""

    method: Literal["token", "kubernetes"] = Field(
        default="kubernetes", description="`kubernetes` (service-account token) or `token`."
    )
    role: str | None = Field(default=None, description="kubernetes: the Vault role to log in as (required).")
    mount: str = Field(default="kubernetes", description="kubernetes: mount point of the auth method.")
    jwt_path: str = Field(
        default=SERVICE_ACCOUNT_TOKEN_PATH,
        description="kubernetes: file holding the service-account token (re-read at every login, so rotation works).",
    )
    token_env: str = Field(default="VAULT_TOKEN", description="token: environment variable holding the token.")
    token_file: str | None = Field(default=None, description="token: file holding the token (wins over tokenEnv).")


class VaultSettings(ContractModel):
    """Where Vault is and how keys are refreshed."""

    address: str = Field(description="Vault/OpenBao address, e.g. `https://vault.vault:8200`.")
    auth: VaultAuth = Field(default_factory=VaultAuth, description="How to log in.")
    ca_cert: str | None = Field(default=None, description="CA bundle file to verify Vault's TLS certificate.")
    refresh_seconds: float = Field(default=300.0, gt=0, description="How often keys are re-read.")
    timeout_seconds: float = Field(default=10.0, gt=0, description="Timeout of each Vault request.")


# CEL rules mirroring the cross-field validators above, so the API server rejects what the
# replicator would (``kubectl apply`` fails early instead of a replicator refusing to start).
_CEL_RULES: dict[str, list[dict[str, str]]] = {
    "ColumnMatch": [
        {"rule": "has(self.column) != has(self.columnRegex)", "message": "set exactly one of column and columnRegex"}
    ],
    "MaskingRule": [
        {"rule": "self.action != 'hmac' || has(self.keyRef)", "message": "action hmac requires keyRef"},
        {"rule": "self.action != 'hash' || has(self.saltRef)", "message": "action hash requires saltRef"},
        {"rule": "self.action != 'partial' || has(self.keepLast)", "message": "action partial requires keepLast"},
        {"rule": "!has(self.keyRef) || self.action == 'hmac'", "message": "keyRef applies to action hmac only"},
        {"rule": "!has(self.saltRef) || self.action == 'hash'", "message": "saltRef applies to action hash only"},
        {
            "rule": "(!has(self.keepLast) && !has(self.maskChar)) || self.action == 'partial'",
            "message": "keepLast and maskChar apply to action partial only",
        },
        {"rule": "!has(self.marker) || self.action == 'redact'", "message": "marker applies to action redact only"},
    ],
}


def crd_schema(model: type[BaseModel] = MaskingPolicySpec) -> dict[str, object]:
    """``model``'s JSON schema as a Kubernetes structural OpenAPI v3 schema (for a CRD's spec).

    Kubernetes wants no ``$ref``, no ``anyOf`` with ``null`` (optional means absent) and no
    ``title``; this inlines, strips and adds the CEL rules above as ``x-kubernetes-validations``.
    """
    raw = model.model_json_schema(by_alias=True)
    definitions: dict[str, dict[str, object]] = raw.pop("$defs", {})

    def convert(node: object, name: str | None = None) -> object:
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            ref = str(node["$ref"]).rsplit("/", 1)[-1]
            inlined = convert(definitions[ref], ref)
            assert isinstance(inlined, dict)
            extra = {k: convert(v) for k, v in node.items() if k not in ("$ref", "title")}
            return {**inlined, **extra}
        if "anyOf" in node:
            options = [o for o in node["anyOf"] if o != {"type": "null"}]
            if len(options) == 1:
                merged = {**options[0], **{k: v for k, v in node.items() if k != "anyOf"}}
                if merged.get("default", 0) is None:
                    del merged["default"]
                return convert(merged, name)
        out = {k: convert(v) for k, v in node.items() if k not in ("title", "additionalProperties")}
        if name in _CEL_RULES:
            out["x-kubernetes-validations"] = _CEL_RULES[name]
        return out

    result = convert(raw, model.__name__)
    assert isinstance(result, dict)
    return result
