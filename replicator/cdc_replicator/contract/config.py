"""The replicator's configuration file: the contract between the operator and the replicator.

``cdc-replicator run --config FILE`` reads one YAML document of this shape. The operator
renders it (``cdc_operator.render.config``) into a ConfigMap per Cassandra node; people may
also write it by hand to run a replicator outside Kubernetes.

Rules of the contract:

- Keys are camelCase in the file (as in the CRDs); Python attributes are snake_case.
- Unknown keys are errors (``extra="forbid"``): a typo must fail at start, not be ignored.
- Secrets never appear in the file. Every credential is an *indirection*: the name of an
  environment variable (``passwordEnv: PG_PASSWORD``) or a file (``caFile``) that the
  Deployment fills from a Secret. The file itself can therefore live in a ConfigMap.
- ``version`` is bumped when a change is not backwards compatible.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from cdc_replicator.contract.base import ContractModel
from cdc_replicator.contract.policy import KeySource, MaskingPolicySpec, VaultSettings

EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="an environment variable's name")]


class Credentials(ContractModel):
    """A username and password, each read from an environment variable at start."""

    username_env: EnvName | None = Field(default=None, description="Variable holding the user name.")
    password_env: EnvName | None = Field(default=None, description="Variable holding the password.")

    def resolve(self, environ: dict[str, str] | None = None) -> tuple[str | None, str | None]:
        """The user name and password, from the environment; a named but unset variable is an error."""
        env = os.environ if environ is None else environ
        values: list[str | None] = []
        for name in (self.username_env, self.password_env):
            if name is None:
                values.append(None)
            elif name not in env:
                raise ConfigError(f"environment variable {name} is named in the config but not set")
            else:
                values.append(env[name])
        return values[0], values[1]


class Tls(ContractModel):
    """TLS towards a server; files are mounted from Secrets."""

    enabled: bool = Field(default=True, description="Use TLS.")
    ca_file: str | None = Field(default=None, description="PEM bundle of CAs to trust; the system store if unset.")
    cert_file: str | None = Field(default=None, description="Client certificate (PEM) for mutual TLS.")
    key_file: str | None = Field(default=None, description="Client private key (PEM) for mutual TLS.")
    insecure_skip_verify: bool = Field(default=False, description="Do not verify the server (tests only).")
    min_version: Literal["1.2", "1.3"] = Field(
        default="1.2", description="Lowest TLS protocol version accepted; a server offering only older ones is refused."
    )

    @field_validator("min_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # minVersion: 1.3 unquoted is a YAML float; it means the same as "1.3".
        return f"{value:.1f}" if isinstance(value, float) else value

    @model_validator(mode="after")
    def _pair(self) -> Tls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("certFile and keyFile go together")
        return self


class CassandraCluster(ContractModel):
    """How to reach a Cassandra cluster over CQL (for the schema)."""

    contact_points: list[str] = Field(min_length=1, description="host or host:port of nodes to read the schema from.")
    port: int = Field(default=9042, ge=1, le=65535, description="CQL port for contact points without one.")
    local_datacenter: str | None = Field(default=None, description="Datacenter for the driver's load balancing.")
    credentials: Credentials | None = Field(default=None, description="CQL login, if authentication is on.")
    tls: Tls | None = Field(default=None, description="TLS for CQL connections.")


class CassandraSource(CassandraCluster):
    """One Cassandra node: its cdc_raw directory, what to replicate, and how to reach the cluster."""

    node_name: str = Field(description="Name of the Cassandra node this replicator follows (for metrics and logs).")
    cdc_raw_path: str = Field(description="Directory of the node's cdc_raw (segments and _cdc.idx files).")
    keyspaces: list[str] = Field(default_factory=list, description="Keyspaces to replicate whole.")
    tables: list[str] = Field(
        default_factory=list, description="Tables to replicate as keyspace.table; with keyspaces, the union."
    )
    delete_consumed_segments: bool = Field(
        default=True,
        description="Delete a segment from cdc_raw once every destination committed past it "
        "(Cassandra rejects writes to CDC tables when cdc_raw is full).",
    )
    cdc_total_space_bytes: int | None = Field(
        default=None,
        gt=0,
        description="The node's cdc_total_space in bytes, exported as cdc_total_space_bytes for the alerts on "
        "cdc_raw filling up; unset: read from the node's system_views.settings over CQL.",
    )

    @model_validator(mode="after")
    def _something_selected(self) -> CassandraSource:
        if not self.keyspaces and not self.tables:
            raise ValueError("select at least one keyspace or table")
        bad = [t for t in self.tables if t.count(".") != 1]
        if bad:
            raise ValueError(f"tables must be keyspace.table: {bad}")
        return self


class TableOptions(ContractModel):
    """Per-table options of one destination."""

    table: str = Field(description="Source table as keyspace.table.")
    target: str | None = Field(default=None, description="Destination table name; default keyspace_table.")
    time_column: str | None = Field(
        default=None,
        description="TimescaleDB: timestamp column of the primary key to partition the hypertable on; "
        "without it the destination keeps the change history partitioned by write time.",
    )
    chunk_interval: str | None = Field(default=None, description="TimescaleDB chunk interval, e.g. '1 day'.")


class Destination(ContractModel):
    """One warehouse the changes go to; each has its own offset, retries and dead-letter table."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", description="Unique name; labels metrics.")
    type: Literal["postgres", "timescaledb", "clickhouse"] = Field(description="Kind of destination.")
    endpoint: str = Field(description="host:port (Postgres, TimescaleDB) or URL (ClickHouse HTTP).")
    database: str = Field(description="Database to write into.")
    target_schema: str | None = Field(default=None, description="Postgres/TimescaleDB schema; default public.")
    credentials: Credentials | None = Field(default=None, description="Login, read from the environment.")
    tls: Tls | None = Field(default=None, description="TLS towards the destination.")
    tables: list[TableOptions] = Field(default_factory=list, description="Per-table options.")

    @model_validator(mode="after")
    def _unique_tables(self) -> Destination:
        names = [t.table for t in self.tables]
        if len(names) != len(set(names)):
            raise ValueError(f"destination {self.name}: a table appears twice in tables")
        return self

    @model_validator(mode="after")
    def _tls_means_https(self) -> Destination:
        # A tls section on a plain-HTTP ClickHouse endpoint would silently send everything in clear.
        tls_on = self.tls is not None and self.tls.enabled
        if self.type == "clickhouse" and tls_on and not self.endpoint.startswith("https://"):
            raise ValueError(f"destination {self.name}: tls needs an https:// endpoint, not {self.endpoint}")
        return self


class MaskingPolicyConfig(MaskingPolicySpec):
    """One MaskingPolicy embedded whole (the replicator needs no API access): its name and its spec's rules,
    exactly as ``cdc_replicator.contract.policy`` defines them."""

    name: str = Field(description="The MaskingPolicy's name, for audit logs and metrics.")


class MaskingKeyEnv(ContractModel):
    """A named HMAC key or salt, injected as environment variables (the operator reads Vault for us)."""

    name: str = Field(description="The key's name, as rules use it in keyRef/saltRef.")
    env: EnvName = Field(
        description="Variable holding the key bytes, base64-encoded; <env>_VERSION holds its KV version "
        "(see cdc_replicator.masking.keys.keys_from_environment)."
    )


class MaskingVault(VaultSettings):
    """Keys and salts the replicator reads itself from Vault/OpenBao KV v2 (with hvac), cached and
    re-read every ``refreshSeconds``. At start, a wrong path, a missing field or denied access
    stops the replicator with an error naming the key and the path; on a later refresh the last
    good version stays in use and ``cdc_masking_key_refresh_errors_total{key}`` grows.
    The secret's KV version is the key's version (``v<version>:`` in hmac tokens): rotate a key
    by writing a new version of its secret (see ``cdc_replicator.masking.keys``)."""

    keys: list[KeySource] = Field(
        min_length=1, description="Named keys and salts: mount, path, field and encoding of each."
    )


class Masking(ContractModel):
    """Masking policies, applied in order before anything leaves the replicator, and the keys they use.

    Keys come from environment variables (``keys``, as the operator renders them) or straight
    from Vault (``vault``); both may be used at once, with distinct names."""

    policies: list[MaskingPolicyConfig] = Field(default_factory=list, description="Policies in order.")
    keys: list[MaskingKeyEnv] = Field(
        default_factory=list, description="Keys and salts the rules name, from environment variables."
    )
    vault: MaskingVault | None = Field(
        default=None, description="Keys and salts the rules name, read from Vault/OpenBao KV v2 and refreshed."
    )

    def key_names(self) -> list[str]:
        """Every configured key name, from the environment and from Vault."""
        return [k.name for k in self.keys] + ([k.name for k in self.vault.keys] if self.vault else [])

    @model_validator(mode="after")
    def _keys_present(self) -> Masking:
        names = self.key_names()
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"masking keys configured twice: {', '.join(duplicates)}")
        missing = sorted({ref for p in self.policies for ref in p.secret_refs()} - set(names))
        if missing:
            raise ValueError(f"masking keys named by rules but not configured: {', '.join(missing)}")
        return self


class Checkpoint(ContractModel):
    """Where the replicator writes its progress for the checkpoint sidecar."""

    path: str = Field(description="JSON file rewritten atomically after each commit.")
    interval_seconds: float = Field(default=5.0, gt=0, description="How often the file is rewritten at most.")


class Tuning(ContractModel):
    """Batching and retry knobs; defaults suit most pipelines."""

    batch_size: int = Field(default=10_000, ge=1, description="Events per destination batch, at most.")
    batch_max_wait_seconds: float = Field(default=1.0, gt=0, description="Flush a partial batch after this long.")
    poll_interval_seconds: float = Field(default=1.0, gt=0, description="How often cdc_raw is scanned.")
    retry_initial_seconds: float = Field(default=0.5, gt=0, description="First retry delay (exponential, jitter).")
    retry_max_seconds: float = Field(default=60.0, gt=0, description="Longest retry delay.")


class Observability(ContractModel):
    """Metrics and health endpoint."""

    metrics_port: int = Field(default=9400, ge=1, le=65535, description="Port of /metrics and /health.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info", description="Log level.")
    tracing: Literal["off", "console", "otlp"] = Field(
        default="off",
        description="OpenTelemetry spans per batch: off, printed to stdout (console), or exported over OTLP/HTTP "
        "(otlp; needs opentelemetry-exporter-otlp-proto-http installed).",
    )
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP traces endpoint for tracing: otlp (default: the exporter's own default)."
    )


class ReplicatorConfig(ContractModel):
    """The whole file."""

    version: Literal[1] = Field(default=1, description="Version of this file format.")
    pipeline: str = Field(description="namespace/name of the CdcPipeline, for metrics and logs.")
    source: CassandraSource = Field(description="The Cassandra node to follow.")
    destinations: list[Destination] = Field(min_length=1, description="Where changes go.")
    masking: Masking = Field(default_factory=Masking, description="Masking policies and their keys.")
    checkpoint: Checkpoint = Field(description="Progress file for the sidecar.")
    tuning: Tuning = Field(default_factory=Tuning, description="Batching and retries.")
    observability: Observability = Field(default_factory=Observability, description="Metrics and logs.")

    @model_validator(mode="after")
    def _unique_destinations(self) -> ReplicatorConfig:
        names = [d.name for d in self.destinations]
        if len(names) != len(set(names)):
            raise ValueError("destination names must be unique")
        return self

    def to_yaml(self) -> str:
        """The file as the operator writes it: camelCase keys, defaults included, stable order."""
        return yaml.safe_dump(self.model_dump(mode="json", by_alias=True), sort_keys=False)


class ConfigError(Exception):
    """The config file is missing, not YAML, or does not match the contract."""


def parse(text: str, source: str = "<config>") -> ReplicatorConfig:
    """Parse and validate a config document; errors name the file and each offending key."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return ReplicatorConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: invalid replicator config:"]
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  {where}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from exc


def load(path: str | Path) -> ReplicatorConfig:
    """Read and validate the config file at ``path``."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from exc
    return parse(text, str(p))
