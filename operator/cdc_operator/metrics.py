"""The operator's own Prometheus metrics (kopf exports none)."""

from __future__ import annotations

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
