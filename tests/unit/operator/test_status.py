"""Status folding: conditions, phase, lag and staleness from what the operator observed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cdc_operator.reconcile import Outcome
from cdc_operator.sidecar import read_checkpoint
from cdc_operator.status import Replicas, compute, parse_checkpoint, should_patch

from tests.unit.operator.conftest import example

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
OK = Outcome(ok=True, config_hash="abc", nodes=["node1", "node2"])


def _body(**spec: Any) -> dict[str, Any]:
    body = example("pipeline-three-nodes.yaml")
    body["metadata"].update(generation=3, namespace="ns")
    body["spec"].update(spec)
    return body


def _checkpoint(age: float = 1, lag: float = 2.0, error: str | None = None) -> Any:
    updated = (NOW - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
    dest = {"name": "warehouse", "position": "7:100", "lagSeconds": lag, "lastError": error}
    return parse_checkpoint(json.dumps({"node": "node1", "updatedAt": updated, "destinations": [dest]}))


def _ready(n: int = 2) -> list[Replicas]:
    return [Replicas(f"node{i + 1}", 1, 1, 1, True) for i in range(n)]


def _conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_healthy_pipeline_is_ready_with_lag_summary() -> None:
    status = compute(_body(), OK, replicas=_ready(), checkpoints={"node1": _checkpoint(), "node2": None}, now=NOW)
    assert _conditions(status) == {
        "Ready": ("True", "ReplicatorsReady"),
        "Progressing": ("False", "RolloutComplete"),
        "Degraded": ("False", "AsExpected"),
        "Paused": ("False", "Running"),
    }
    assert status["phase"] == "Running"
    assert status["maxLagSeconds"] == 2.0
    assert status["observedGeneration"] == 3
    assert all(c["observedGeneration"] == 3 for c in status["conditions"])
    assert status["replicators"] == "2/2"
    assert status["nodes"][0]["destinations"] == [{"name": "warehouse", "position": "7:100", "lagSeconds": 2.0}]


@pytest.mark.parametrize(
    ("checkpoint", "reason"),
    [
        (_checkpoint(age=600), "CheckpointStale"),
        (_checkpoint(lag=10_000), "LagAboveThreshold"),
        (_checkpoint(error="connection refused"), "DestinationUnavailable"),
    ],
)
def test_degraded_reasons(checkpoint: Any, reason: str) -> None:
    status = compute(_body(), OK, replicas=_ready(), checkpoints={"node1": checkpoint}, now=NOW, stale_after=120)
    assert _conditions(status)["Degraded"] == ("True", reason)
    assert status["phase"] == "Degraded"


def test_paused_is_not_stale_and_says_so() -> None:
    status = compute(_body(paused=True), OK, replicas=[], checkpoints={"node1": _checkpoint(age=9999)}, now=NOW)
    assert _conditions(status)["Paused"] == ("True", "Paused")
    assert _conditions(status)["Ready"] == ("False", "Paused")
    assert _conditions(status)["Degraded"][0] == "False"
    assert status["phase"] == "Paused"


def test_missing_reference_fails_and_transient_errors_degrade() -> None:
    missing = Outcome(ok=False, reason="MaskingPolicyNotFound", message="MaskingPolicy customer-pii not found")
    status = compute(_body(), missing, replicas=[], checkpoints={}, now=NOW)
    assert _conditions(status)["Ready"] == ("False", "MaskingPolicyNotFound")
    assert status["phase"] == "Failed"
    vault_down = Outcome(ok=False, reason="VaultUnavailable", message="timeout", transient=True)
    status = compute(_body(), vault_down, replicas=_ready(), checkpoints={}, now=NOW)
    assert _conditions(status)["Degraded"] == ("True", "VaultUnavailable")


def test_no_nodes_found_is_not_ready() -> None:
    status = compute(_body(), Outcome(ok=True, nodes=[]), replicas=[], checkpoints={}, now=NOW)
    assert _conditions(status)["Ready"] == ("False", "NoNodesFound")


def test_rollout_in_progress_and_transition_times_kept() -> None:
    rolling = [Replicas("node1", 1, 0, 0, False), Replicas("node2", 1, 1, 1, True)]
    first = compute(_body(), OK, replicas=rolling, checkpoints={}, now=NOW)
    assert _conditions(first)["Progressing"] == ("True", "RollingOut")
    body = _body()
    body["status"] = first
    later = compute(body, OK, replicas=rolling, checkpoints={}, now=NOW + timedelta(minutes=5))
    assert later["conditions"] == first["conditions"]  # nothing changed: same lastTransitionTime
    done = compute(body, OK, replicas=_ready(), checkpoints={}, now=NOW + timedelta(minutes=5))
    ready = next(c for c in done["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2026-11-26T12:05:00Z"


def test_should_patch_on_change_but_rate_limits_moving_numbers() -> None:
    base = compute(_body(), OK, replicas=_ready(), checkpoints={"node1": _checkpoint(lag=1)}, now=NOW)
    lag_moved = compute(_body(), OK, replicas=_ready(), checkpoints={"node1": _checkpoint(lag=5)}, now=NOW)
    degraded = compute(_body(), OK, replicas=_ready(), checkpoints={"node1": _checkpoint(error="x")}, now=NOW)
    assert should_patch(None, base, 0, 30)
    assert not should_patch(base, base, 999, 30)
    assert not should_patch(base, lag_moved, 5, 30)
    assert should_patch(base, lag_moved, 31, 30)
    assert should_patch(base, degraded, 0, 30)


def test_unreadable_checkpoints_are_ignored(tmp_path: Path) -> None:
    assert parse_checkpoint(None) is None
    assert parse_checkpoint("{half") is None
    assert parse_checkpoint('{"node": "n"}') is None  # no updatedAt
    path = tmp_path / "checkpoint.json"
    assert read_checkpoint(path) is None
    path.write_text('{"node": "n1", "upd')
    assert read_checkpoint(path) is None
    path.write_text('{"node": "n1", "updatedAt": "2026-11-26T12:00:00Z"}')
    assert read_checkpoint(path) == path.read_text()
