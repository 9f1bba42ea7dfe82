"""The runner's pure decisions: which pods fit its node, where a hostPath really is, which command
stands in for an image. No lab needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from e2e.podrunner.binding import fits
from e2e.podrunner.config import RunnerConfig
from e2e.podrunner.node import node_labels
from e2e.podrunner.sandbox import expand

pytestmark = pytest.mark.unit

NODE = "lab-node"
LABELS = node_labels(NODE)


def pod(spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "n"}, "spec": {"containers": [], **spec}}


def hostname_affinity(operator: str, values: list[str]) -> dict[str, Any]:
    term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": operator, "values": values}]}
    return {
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, True),
        ({"nodeSelector": {"kubernetes.io/hostname": NODE}}, True),
        ({"nodeSelector": {"kubernetes.io/hostname": "other"}}, False),
        (hostname_affinity("In", [NODE, "other"]), True),
        (hostname_affinity("In", ["other"]), False),
        (hostname_affinity("NotIn", ["other"]), True),
        ({"schedulerName": "someone-else"}, False),
    ],
)
def test_a_pod_fits_our_node_only_by_its_placement_rules(spec: dict[str, Any], expected: bool) -> None:
    assert fits(pod(spec), NODE, LABELS) is expected


def test_host_paths_map_by_longest_prefix_and_images_to_entrypoints(tmp_path: Path) -> None:
    cfg = RunnerConfig(
        kubeconfig=tmp_path / "kc",
        state_dir=tmp_path,
        path_map={"/var/lib/cassandra": "/x", "/var/lib/cassandra/cdc_raw": "/y"},
    )
    assert cfg.map_host_path("/var/lib/cassandra/cdc_raw/seg") == "/y/seg"
    assert cfg.map_host_path("/var/lib/cassandra/data") == "/x/data"
    assert cfg.map_host_path("/var/lib/cassandra-other") == "/var/lib/cassandra-other"
    assert cfg.entrypoint("ghcr.io/cassandra-cdc/replicator:0.1.0") == ["cdc-replicator"]
    assert cfg.entrypoint("ghcr.io/cassandra-cdc/operator@sha256:abc") == ["cdc-operator"]
    assert cfg.entrypoint("localhost:5000/cassandra-cdc/replicator") == []


def test_dollar_references_expand_like_kubernetes() -> None:
    env = {"A": "1", "B": "two"}
    assert expand("$(A)-$(B)-$(C)-$$(A)", env) == "1-two-$(C)-$(A)"
