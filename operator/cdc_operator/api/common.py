"""Types shared by both kinds: secret sources, TLS, conditions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from cdc_operator.api.base import ApiModel, cel, validations

DnsName = Annotated[
    str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", description="A DNS label.")
]


class SecretCredentials(ApiModel):
    """User name and password from a Secret in the pipeline's namespace."""

    name: str = Field(max_length=253, description="Name of the Secret.")
    username_key: str = Field(default="username", max_length=253, description="Key holding the user name.")
    password_key: str = Field(default="password", max_length=253, description="Key holding the password.")


class VaultCredentials(ApiModel):
    """User name and password from a Vault/OpenBao KV v2 secret; the operator copies them into a Secret it owns
    and refreshes it on a timer, so a rotation in Vault rolls the replicators."""

    path: str = Field(
        min_length=1,
        max_length=512,
        description="KV v2 path below the operator's mount, e.g. 'cdc/warehouse' for secret/data/cdc/warehouse.",
    )
    username_key: str = Field(default="username", max_length=253, description="Field holding the user name.")
    password_key: str = Field(default="password", max_length=253, description="Field holding the password.")


class Credentials(ApiModel):
    """Where a login comes from: exactly one of secretRef or vault."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel("has(self.secretRef) != has(self.vault)", "exactly one of secretRef or vault must be set")
        )
    }

    secret_ref: SecretCredentials | None = Field(default=None, description="Read the login from a Secret.")
    vault: VaultCredentials | None = Field(default=None, description="Read the login from Vault/OpenBao KV v2.")


class Tls(ApiModel):
    """TLS material from a Secret: a cert-manager kubernetes.io/tls Secret or any Secret holding a CA bundle.
    Its content's thumbprint is part of the rollout hash, so a renewed certificate rolls the replicators."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel("!self.insecureSkipVerify || !has(self.secretName)", "insecureSkipVerify excludes secretName")
        )
    }

    secret_name: str | None = Field(default=None, max_length=253, description="Secret with the TLS material.")
    ca_key: str = Field(default="ca.crt", max_length=253, description="Key of the CA bundle in the Secret.")
    client_certificate: bool = Field(
        default=False, description="Present tls.crt/tls.key from the Secret as a client certificate (mutual TLS)."
    )
    insecure_skip_verify: bool = Field(default=False, description="Skip server verification. Never in production.")
    min_version: Literal["1.2", "1.3"] = Field(
        default="1.2",
        description="Lowest TLS protocol version the replicator accepts from this server (1.2 or 1.3); "
        "a server offering only older ones is refused.",
    )


class Condition(ApiModel):
    """A standard Kubernetes condition (metav1.Condition)."""

    type: str = Field(max_length=316, description="Ready, Progressing, Degraded or Paused.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(max_length=1024, description="CamelCase reason for the last transition.")
    message: str = Field(default="", max_length=32768, description="Human-readable details.")
    last_transition_time: str = Field(description="When the status last changed (RFC 3339).")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation this condition was computed for."
    )


ConditionList = Annotated[
    list[Condition],
    Field(
        default_factory=list,
        max_length=16,
        description="Standard conditions, keyed by type.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    ),
]
