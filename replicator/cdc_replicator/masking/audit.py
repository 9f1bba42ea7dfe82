"""Audit of masking: Prometheus counters and one structured log line per batch, never values.

The hot path (``apply``) only adds into a plain ``list[int]`` per table plan while it masks (cheap enough
for the hot path); this module turns those tallies into counter increments and a log line
once per batch. Everything recorded here is a name (rule, keyspace, table, column, path,
action, classification, key name) or a number (count, key version).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from cdc_replicator.masking.plans import TablePlan

AUDIT_LOGGER = logging.getLogger("cdc_replicator.masking.audit")


class MaskingMetrics:
    """The masking metrics, registered once per registry (the process default unless given)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.masked_values = Counter(
            "cdc_masking_masked_values",
            "Values masked, per rule and column.",
            ["rule", "classification", "action", "keyspace", "table", "column"],
            registry=registry,
        )
        self.key_refresh_errors = Counter(
            "cdc_masking_key_refresh_errors",
            "Failed reads of a masking key or salt from Vault (the last good version stays in use).",
            ["key"],
            registry=registry,
        )
        self.key_version = Gauge(
            "cdc_masking_key_version",
            "Version (KV v2 secret version) of each masking key or salt in use.",
            ["key"],
            registry=registry,
        )


def audit_record(tallies: Iterable[tuple[TablePlan, list[int]]]) -> list[dict[str, Any]]:
    """The masked fields of a batch: one entry per rule and column that masked anything."""
    fields: list[dict[str, Any]] = []
    for plan, counts in tallies:
        for key, count in zip(plan.audit, counts, strict=True):
            if count:
                fields.append(
                    {
                        "keyspace": key.keyspace,
                        "table": key.table,
                        "field": key.field,
                        "rule": key.rule,
                        "classification": key.classification,
                        "action": key.action,
                        "count": count,
                    }
                )
    return fields


def record_batch(
    metrics: MaskingMetrics,
    tallies: Iterable[tuple[TablePlan, list[int]]],
    events: int,
    logger: logging.Logger = AUDIT_LOGGER,
) -> list[dict[str, Any]]:
    """Add a batch's tallies to the counters and log its one audit line; returns the fields logged."""
    fields = audit_record(tallies)
    for entry in fields:
        metrics.masked_values.labels(
            entry["rule"],
            entry["classification"],
            entry["action"],
            entry["keyspace"],
            entry["table"],
            entry["field"],
        ).inc(entry["count"])
    if fields:
        record = {"event": "masking.batch", "events": events, "masked": fields}
        # The message is the JSON itself (readable by any handler); ``extra`` feeds JSON formatters.
        logger.info("%s", json.dumps(record, separators=(",", ":")), extra={"audit": record})
    return fields
