"""The operator's own Prometheus metrics (kopf exports none).

Per-pipeline series carry ``pipeline`` as ``namespace/name``, the same value the replicators'
own ``pipeline`` label has (their rendered config), so the alert rules and the dashboard of the
chart join and filter both alike. A pipeline that goes away takes its series with it
(:func:`forget_pipeline`).
"""

from __future__ import annotations

import contextlib
import threading

from prometheus_client import Counter, Gauge, Histogram

RECONCILIATIONS = Counter(
    "cdc_operator_reconciliations_total",
    "Reconciliations by kind and result (success, reference_error, error).",
    ["kind", "result"],
)
RECONCILE_DURATION = Histogram(
    "cdc_operator_reconcile_duration_seconds",
    "Time spent in one reconcile, including API calls and Vault reads.",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PIPELINES = Gauge("cdc_operator_pipelines", "CdcPipelines by phase.", ["phase"])
PIPELINE_CONDITIONS = Gauge(
    "cdc_operator_pipeline_conditions", "CdcPipelines by condition type and status.", ["condition", "status"]
)
STATUS_PATCHES = Counter("cdc_operator_status_patches_total", "Status patches written.", ["kind"])
VAULT_READS = Counter("cdc_operator_vault_reads_total", "Vault KV reads by result.", ["result"])

PHASES = ("Running", "Pending", "Paused", "Degraded", "Failed")
RECONCILE_ERRORS = Counter(
    "cdc_operator_reconcile_errors_total",
    "Failed reconciles of a pipeline by reason: a condition reason such as VaultNotConfigured or "
    "MaskingPolicyNotFound, ApiError (the Kubernetes API refused or failed), or InternalError.",
    ["pipeline", "reason"],
)
REPLICATORS_DESIRED = Gauge(
    "cdc_operator_replicator_desired_replicas",
    "Replicas a node's replicator Deployment asks for (0 while paused).",
    ["pipeline", "node"],
)
REPLICATORS_READY = Gauge(
    "cdc_operator_replicator_ready_replicas", "Ready replicas of a node's replicator Deployment.", ["pipeline", "node"]
)
CHECKPOINT_TIMESTAMP = Gauge(
    "cdc_operator_checkpoint_timestamp_seconds",
    "When a node's replicator last wrote its checkpoint, as its sidecar published it (unpaused pipelines only).",
    ["pipeline", "node"],
)

_exported: dict[str, set[tuple[str, str]]] = {}  # pipeline -> (gauge name, node) it has series for
_lock = threading.Lock()


def export_pipeline(
    pipeline: str, replicas: dict[str, tuple[int, int]], checkpoints: dict[str, float | None], paused: bool
) -> None:
    """Set a pipeline's per-node gauges: ``replicas`` node -> (desired, ready); ``checkpoints`` node ->
    checkpoint time (Unix seconds) or None. Series of nodes no longer there are removed."""
    wanted: set[tuple[str, str]] = set()
    for node, (desired, ready) in replicas.items():
        REPLICATORS_DESIRED.labels(pipeline, node).set(desired)
        REPLICATORS_READY.labels(pipeline, node).set(ready)
        wanted |= {("desired", node), ("ready", node)}
    for node, at in checkpoints.items():
        if at is not None and not paused:  # a paused pipeline writes no checkpoints: not stale
            CHECKPOINT_TIMESTAMP.labels(pipeline, node).set(at)
            wanted.add(("checkpoint", node))
    with _lock:
        _remove(pipeline, _exported.get(pipeline, set()) - wanted)
        _exported[pipeline] = wanted


def forget_pipeline(pipeline: str) -> None:
    with _lock:
        _remove(pipeline, _exported.pop(pipeline, set()))


def _remove(pipeline: str, series: set[tuple[str, str]]) -> None:
    gauges = {"desired": REPLICATORS_DESIRED, "ready": REPLICATORS_READY, "checkpoint": CHECKPOINT_TIMESTAMP}
    for gauge, node in series:
        with contextlib.suppress(KeyError):  # never set
            gauges[gauge].remove(pipeline, node)
