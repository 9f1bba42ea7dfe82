"""The CdcPipeline kind: one Cassandra cluster's changes, masked, into one or more warehouses."""

from __future__ import annotations

from typing import Annotated, Literal

from kubernetes.utils import parse_quantity
from pydantic import Field, field_validator

from cdc_operator.api.base import ApiModel, cel, validations
from cdc_operator.api.common import ConditionList, Credentials, DnsName, Tls
from cdc_operator.api.masking import KeySource

Quantity = Annotated[int | str, Field(description="A Kubernetes quantity, e.g. 500m or 256Mi.")]


def quantity_bytes(value: int | str) -> int:
    """A Kubernetes quantity (4Gi, 4096Mi, 4G, 4294967296) in whole bytes; ValueError if it is none."""
    return int(parse_quantity(value))  # type: ignore[no-untyped-call]


class HostPathCdcRaw(ApiModel):
    """cdc_raw on the Kubernetes node's disk (Cassandra with hostPath or local volumes)."""

    path: str = Field(
        min_length=1,
        max_length=1024,
        description="Absolute path of the cdc_raw directory on the node; '{node}' is replaced by the "
        "Cassandra node's name.",
    )


class PvcCdcRaw(ApiModel):
    """cdc_raw inside the Cassandra node's PersistentVolumeClaim (cass-operator: server-data-<pod>)."""

    claim_name: str = Field(
        min_length=1,
        max_length=253,
        description="Name of the claim; '{node}' is replaced by the Cassandra node's name (its pod name "
        "when discovered by selector), e.g. 'server-data-{node}'.",
    )
    sub_path: str = Field(default="cdc_raw", max_length=1024, description="cdc_raw's directory within the volume.")


class CdcRawVolume(ApiModel):
    """Where a node's cdc_raw is: exactly one of hostPath or persistentVolumeClaim. The replicator runs on the
    same Kubernetes node, since both volumes are node-local."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "has(self.hostPath) != has(self.persistentVolumeClaim)",
                "exactly one of hostPath or persistentVolumeClaim must be set",
            )
        )
    }

    host_path: HostPathCdcRaw | None = Field(default=None, description="cdc_raw is a directory on the node.")
    persistent_volume_claim: PvcCdcRaw | None = Field(default=None, description="cdc_raw is inside a PVC.")


class CassandraNode(ApiModel):
    """One Cassandra node given explicitly (clusters not run by an operator, or tests)."""

    name: DnsName = Field(description="The node's name; names the replicator Deployment and its ConfigMaps.")
    kubernetes_node: str | None = Field(
        default=None,
        max_length=253,
        description="Kubernetes node the Cassandra node runs on; the replicator gets node affinity to it. Set it "
        "whenever cdc_raw is node-local and the cluster has more than one node, or the replicator may land on a "
        "node where the directory is empty.",
    )
    cdc_raw: CdcRawVolume | None = Field(
        default=None, description="Where this node's cdc_raw is; defaults to spec.source.cdcRaw."
    )


class LabelSelectorRequirement(ApiModel):
    """A label selector requirement (metav1.LabelSelectorRequirement)."""

    key: str = Field(max_length=317, description="The label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(description="How key and values relate.")
    values: list[str] = Field(default_factory=list, max_length=64, description="Values for In and NotIn.")


class PodSelector(ApiModel):
    """Find Cassandra nodes as the pods matching a label selector, as K8ssandra/cass-operator label them
    (e.g. cassandra.datastax.com/cluster: demo). Pods added or removed add or remove replicators."""

    match_labels: dict[str, str] = Field(default_factory=dict, description="Labels the pods must all carry.")
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, max_length=16, description="Set-based requirements the pods must meet."
    )


class CassandraSource(ApiModel):
    """The Cassandra cluster: how to reach it for the schema, which nodes it has, and what to capture."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel("has(self.nodes) != has(self.podSelector)", "exactly one of nodes or podSelector must be set"),
            cel(
                "has(self.cdcRaw) || (has(self.nodes) && self.nodes.all(n, has(n.cdcRaw)))",
                "cdcRaw must be set, here or on every node",
            ),
            cel(
                "(has(self.keyspaces) && size(self.keyspaces) > 0) || (has(self.tables) && size(self.tables) > 0)",
                "select at least one keyspace or table",
            ),
        )
    }

    contact_points: list[Annotated[str, Field(max_length=253)]] = Field(
        min_length=1, max_length=16, description="host or host:port of nodes to read the schema from."
    )
    port: int = Field(default=9042, ge=1, le=65535, description="CQL port for contact points without one.")
    local_datacenter: str | None = Field(default=None, max_length=253, description="Datacenter for load balancing.")
    credentials: Credentials | None = Field(default=None, description="CQL login, if authentication is on.")
    tls: Tls | None = Field(default=None, description="TLS for CQL (client-to-node encryption).")
    nodes: list[CassandraNode] | None = Field(
        default=None,
        max_length=256,
        description="Cassandra nodes listed explicitly; exclusive with podSelector.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    pod_selector: PodSelector | None = Field(
        default=None, description="Discover Cassandra nodes as pods in this namespace; exclusive with nodes."
    )
    cdc_raw: CdcRawVolume | None = Field(default=None, description="Where each node's cdc_raw is (a template).")
    keyspaces: list[Annotated[str, Field(max_length=48)]] = Field(
        default_factory=list, max_length=64, description="Keyspaces whose CDC tables are captured whole."
    )
    tables: list[Annotated[str, Field(max_length=97, pattern=r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")]] = Field(
        default_factory=list,
        max_length=256,
        description="Tables captured as keyspace.table, in addition to keyspaces.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    cdc_total_space: int | str | None = Field(
        default=None,
        description="The nodes' cdc_total_space as a quantity (e.g. 4Gi or 4096Mi): once a node's cdc_raw holds "
        "this much, Cassandra rejects writes to CDC tables. Each replicator exports it as cdc_total_space_bytes "
        "for the alerts on cdc_raw filling up; unset, the replicators read it from system_views.settings.",
        json_schema_extra=validations(
            cel(
                "type(self) == int ? self > 0 : (isQuantity(self) && quantity(self).isGreaterThan(quantity('0')))",
                "cdcTotalSpace must be a positive quantity such as 4Gi",
            )
        ),
    )

    @field_validator("cdc_total_space")
    @classmethod
    def _positive_quantity(cls, value: int | str | None) -> int | str | None:
        if value is not None and quantity_bytes(value) <= 0:
            raise ValueError("cdcTotalSpace must be a positive quantity such as 4Gi")
        return value


class DestinationTable(ApiModel):
    """Options for one table at one destination."""

    table: str = Field(max_length=97, pattern=r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$", description="keyspace.table.")
    target: str | None = Field(default=None, max_length=63, description="Destination table; default keyspace_table.")
    time_column: str | None = Field(
        default=None,
        max_length=48,
        description="TimescaleDB only: a timestamp column of the primary key to partition the hypertable on.",
    )
    chunk_interval: str | None = Field(default=None, max_length=32, description="TimescaleDB chunk interval.")


class Destination(ApiModel):
    """A warehouse receiving the changes; each destination has its own offset and retries."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "self.type == 'timescaledb' || !has(self.tables) || self.tables.all(t, !has(t.timeColumn))",
                "timeColumn is only valid for timescaledb destinations",
            ),
        )
    }

    name: DnsName = Field(description="Unique name of the destination within the pipeline.")
    type: Literal["postgres", "timescaledb", "clickhouse"] = Field(description="postgres, timescaledb or clickhouse.")
    endpoint: str = Field(
        min_length=1, max_length=512, description="host:port for Postgres/TimescaleDB, URL for ClickHouse."
    )
    database: str = Field(min_length=1, max_length=63, description="Database to write into.")
    target_schema: str | None = Field(
        default=None, max_length=63, description="Postgres/TimescaleDB schema to write into; default public."
    )
    credentials: Credentials = Field(description="Login: exactly one of secretRef or vault.")
    tls: Tls | None = Field(default=None, description="TLS towards the destination.")
    tables: list[DestinationTable] = Field(
        default_factory=list,
        max_length=256,
        description="Per-table options; a table appears at most once.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["table"]},
    )


class MaskingPolicyRef(ApiModel):
    """A MaskingPolicy in the pipeline's namespace."""

    name: DnsName = Field(description="Name of the MaskingPolicy.")


class ResourceRequirements(ApiModel):
    """Compute resources of the replicator container."""

    requests: dict[str, Quantity] = Field(
        default_factory=lambda: dict[str, int | str](cpu="100m", memory="256Mi"), description="Minimum resources."
    )
    limits: dict[str, Quantity] = Field(default_factory=dict, description="Maximum resources.")


class Tuning(ApiModel):
    """Batching knobs passed to the replicator's config."""

    batch_size: int = Field(default=10000, ge=1, le=1_000_000, description="Events per destination batch.")
    batch_max_wait_seconds: float = Field(default=1.0, gt=0, le=600, description="Flush a partial batch after this.")
    poll_interval_seconds: float = Field(default=1.0, gt=0, le=600, description="How often cdc_raw is scanned.")


class Replicator(ApiModel):
    """How the replicator pods run."""

    image: str = Field(default="ghcr.io/cassandra-cdc/replicator:0.1.0", description="Replicator image.")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="Pull policy for both containers."
    )
    sidecar_image: str = Field(
        default="ghcr.io/cassandra-cdc/operator:0.1.0",
        description="Image of the checkpoint sidecar (the operator image).",
    )
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements, description="Resources.")
    run_as_user: int = Field(
        default=10001, ge=1, description="UID of both containers; must be able to delete files in cdc_raw."
    )
    fs_group: int | None = Field(default=None, ge=0, description="fsGroup of the pod, for volume permissions.")
    tuning: Tuning = Field(default_factory=Tuning, description="Batching.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info", description="Log level.")


class CdcPipelineSpec(ApiModel):
    """What to capture, where to write it, and how to mask it."""

    source: CassandraSource = Field(description="The Cassandra cluster and the tables to capture.")
    destinations: list[Destination] = Field(
        min_length=1,
        max_length=16,
        description="Warehouses to write to; names are unique.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    masking_policy_refs: list[MaskingPolicyRef] = Field(
        default_factory=list,
        max_length=16,
        description="MaskingPolicies applied in order before any data leaves the replicator.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    masking_keys: list[KeySource] = Field(
        default_factory=list,
        max_length=64,
        description="Where the HMAC keys and salts the policies name (keyRef/saltRef) live in Vault/OpenBao. "
        "The operator copies them into a Secret it owns; a new key version rolls the replicators.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    replicator: Replicator = Field(default_factory=Replicator, description="Image, resources and tuning.")
    lag_threshold_seconds: int = Field(
        default=300, ge=1, description="Lag above which the pipeline is Degraded (LagAboveThreshold)."
    )
    paused: bool = Field(default=False, description="Scale the replicators to zero; resuming continues from offsets.")


class DestinationStatus(ApiModel):
    """One destination's progress on one node."""

    name: str = Field(max_length=63, description="Destination name.")
    position: str | None = Field(default=None, max_length=256, description="Committed position (segment:offset).")
    lag_seconds: float | None = Field(default=None, description="Seconds behind the newest change seen.")
    last_error: str | None = Field(default=None, max_length=512, description="Last error, truncated.")


class NodeStatus(ApiModel):
    """One replicator's progress, from its checkpoint ConfigMap."""

    node: str = Field(max_length=63, description="Cassandra node name.")
    updated_at: str | None = Field(default=None, description="When the sidecar last wrote the checkpoint.")
    destinations: list[DestinationStatus] = Field(default_factory=list, max_length=16, description="Per destination.")


class CdcPipelineStatus(ApiModel):
    """Observed state, a bounded summary; full offsets stay in the checkpoint ConfigMaps and in Prometheus."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    observed_generation: int | None = Field(default=None, description="Generation the status was computed for.")
    phase: str | None = Field(
        default=None, max_length=32, description="Short summary: Running, Paused, Pending or Failed."
    )
    conditions: ConditionList
    replicators: str | None = Field(default=None, max_length=16, description="Ready/desired replicators, e.g. 3/3.")
    ready_replicators: int | None = Field(default=None, description="Replicators with a ready pod.")
    desired_replicators: int | None = Field(default=None, description="Replicators wanted (0 while paused).")
    node_count: int | None = Field(default=None, description="Cassandra nodes the pipeline follows.")
    destination_count: int | None = Field(default=None, description="Number of destinations.")
    max_lag_seconds: float | None = Field(default=None, description="Largest lag over nodes and destinations.")
    config_hash: str | None = Field(default=None, max_length=64, description="Current pod-template hash.")
    nodes: list[NodeStatus] = Field(default_factory=list, max_length=256, description="Per node progress.")
