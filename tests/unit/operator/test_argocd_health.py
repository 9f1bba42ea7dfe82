"""The Argo CD health checks, run in a real Lua interpreter against statuses the operator computes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lupa
import pytest
import yaml
from cdc_operator.reconcile import Outcome
from cdc_operator.status import Replicas, compute, parse_checkpoint

from tests.unit.operator.conftest import example

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = ROOT / "charts" / "cdc-operator" / "argocd"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def health(script: str, obj: dict[str, Any]) -> tuple[str, str]:
    """Run a health.lua as Argo CD does: ``obj`` is a global table, the script returns {status, message}."""
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute((SCRIPTS / script).read_text())
    return str(result["status"]), str(result["message"])


def _pipeline(generation: int = 2, **spec: Any) -> dict[str, Any]:
    body = example("pipeline-three-nodes.yaml")
    body["metadata"].update(generation=generation, namespace="ns")
    body["spec"].update(spec)
    return body


def _with_status(body: dict[str, Any], outcome: Outcome, replicas: list[Replicas], **kw: Any) -> dict[str, Any]:
    body["status"] = compute(body, outcome, replicas=replicas, now=NOW, **kw)
    return body


OK = Outcome(ok=True, nodes=["node1"], config_hash="h")
READY = [Replicas("node1", 1, 1, 1, True)]
NOT_READY = [Replicas("node1", 1, 0, 1, False)]


def test_pipeline_health() -> None:
    script = "cdcpipeline-health.lua"
    assert health(script, _pipeline())[0] == "Progressing"  # no status yet
    healthy = _with_status(_pipeline(), OK, READY, checkpoints={})
    assert health(script, healthy) == ("Healthy", "ReplicatorsReady: 1/1 replicators ready")
    # An edit the operator has not seen yet: Progressing, whatever the old conditions say.
    healthy["metadata"]["generation"] = 3
    assert health(script, healthy)[0] == "Progressing"
    assert health(script, _with_status(_pipeline(), OK, NOT_READY, checkpoints={}))[0] == "Progressing"
    paused = _with_status(_pipeline(paused=True), OK, [], checkpoints={})
    assert health(script, paused)[0] == "Suspended"
    missing = Outcome(ok=False, reason="SecretNotFound", message="Secret timescale-login not found")
    assert health(script, _with_status(_pipeline(), missing, [], checkpoints={})) == (
        "Degraded",
        "SecretNotFound: Secret timescale-login not found",
    )
    updated = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    stale = parse_checkpoint(f'{{"node": "node1", "updatedAt": "{updated}"}}')
    status, message = health(script, _with_status(_pipeline(), OK, READY, checkpoints={"node1": stale}))
    assert status == "Degraded"
    assert message.startswith("CheckpointStale")


def test_masking_policy_health() -> None:
    script = "maskingpolicy-health.lua"
    body = {"metadata": {"generation": 1}, "spec": {"rules": []}}
    assert health(script, body)[0] == "Progressing"
    body["status"] = {
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Accepted", "message": "used by 2 pipeline(s)"}],
    }
    assert health(script, body) == ("Healthy", "used by 2 pipeline(s)")
    body["metadata"]["generation"] = 2
    assert health(script, body)[0] == "Progressing"


def test_argocd_cm_example_carries_the_same_scripts() -> None:
    cm = yaml.safe_load((ROOT / "examples" / "argocd" / "argocd-cm.yaml").read_text())
    for kind, script in (("CdcPipeline", "cdcpipeline-health.lua"), ("MaskingPolicy", "maskingpolicy-health.lua")):
        assert (
            cm["data"][f"resource.customizations.health.cdc.cassandra-cdc.io_{kind}"] == (SCRIPTS / script).read_text()
        )
