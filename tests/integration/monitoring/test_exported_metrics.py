"""What a real replicator and a real operator export: every replicator sample carries its pipeline and
node, the node's cdc_total_space is read from Cassandra, and the operator exports per-node gauges."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.monitoring.conftest import sample_labels, sample_labels_values

pytestmark = pytest.mark.integration


def test_every_replicator_sample_names_its_pipeline_and_node(scraped: dict[str, str]) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    samples = [s for f in text_string_to_metric_families(scraped["replicator"]) for s in f.samples]
    assert len(samples) > 20
    assert {(s.labels.get("pipeline"), s.labels.get("node")) for s in samples} == {("test/masking", "node1")}


def test_the_replicator_learns_cdc_total_space_from_the_node(lab: dict[str, Any], scraped: dict[str, str]) -> None:
    # The lab's cassandra.yaml sets cdc_total_space: 2048MiB; system_views.settings reports it.
    assert sample_labels_values(scraped["replicator"], "cdc_total_space_bytes") == [2048 * 1024 * 1024]
    assert sample_labels_values(scraped["replicator"], "cdc_raw_bytes")[0] > 0


def test_the_operator_exports_per_node_gauges(scraped: dict[str, str]) -> None:
    desired = sample_labels(scraped["operator"], "cdc_operator_replicator_desired_replicas")
    assert sorted(d["node"] for d in desired) == ["node1", "node2"]
    assert all(d["pipeline"].endswith("/shop") for d in desired)
    assert sample_labels_values(scraped["operator"], "cdc_operator_replicator_desired_replicas") == [1.0, 1.0]
    assert len(sample_labels(scraped["operator"], "cdc_operator_replicator_ready_replicas")) == 2
