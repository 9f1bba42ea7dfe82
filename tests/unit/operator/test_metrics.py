"""The operator's per-pipeline gauges: set per node, removed with the node or the pipeline, none for
checkpoints while paused."""

from __future__ import annotations

import pytest
from cdc_operator import metrics
from prometheus_client import REGISTRY

pytestmark = pytest.mark.unit


def value(name: str, pipeline: str, node: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"pipeline": pipeline, "node": node})


def test_per_node_gauges_follow_the_nodes() -> None:
    p = "unit/metrics"
    metrics.export_pipeline(p, {"node1": (1, 1), "node2": (1, 0)}, {"node1": 100.0, "node2": None}, paused=False)
    assert value("cdc_operator_replicator_desired_replicas", p, "node2") == 1
    assert value("cdc_operator_replicator_ready_replicas", p, "node2") == 0
    assert value("cdc_operator_checkpoint_timestamp_seconds", p, "node1") == 100
    assert value("cdc_operator_checkpoint_timestamp_seconds", p, "node2") is None
    metrics.export_pipeline(p, {"node1": (0, 0)}, {"node1": 100.0}, paused=True)
    assert value("cdc_operator_replicator_desired_replicas", p, "node2") is None
    assert value("cdc_operator_checkpoint_timestamp_seconds", p, "node1") is None  # paused: not stale
    metrics.forget_pipeline(p)
    assert value("cdc_operator_replicator_desired_replicas", p, "node1") is None
