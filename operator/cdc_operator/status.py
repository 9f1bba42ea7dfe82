"""Pure computation of ``CdcPipeline.status`` from what the operator observed.

Inputs: the reconcile :class:`~cdc_operator.reconcile.Outcome`, the replicator Deployments' status,
the checkpoint reports the sidecars published, and the previous status (to keep each condition's
``lastTransitionTime``). Conditions follow metav1.Condition; health comes from them, ``phase`` is
cosmetic. :func:`should_patch` keeps the API server quiet: a patch when something meaningful
changed, otherwise at most every ``min_interval`` for moving numbers such as lag.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cdc_replicator.contract.checkpoint import CheckpointReport
from pydantic import ValidationError

from cdc_operator.api.pipeline import CdcPipelineSpec
from cdc_operator.reconcile import Outcome

MAX_ERROR = 256  # status is a bounded summary; full errors are in the replicator's logs


@dataclass(frozen=True)
class Replicas:
    """One replicator Deployment as observed."""

    node: str
    desired: int
    ready: int
    updated: int
    rolled_out: bool  # the Deployment controller saw the latest template and finished


def parse_checkpoint(raw: str | None) -> CheckpointReport | None:
    """A checkpoint ConfigMap's data; None when absent or unreadable (shown as stale, never a crash)."""
    if not raw:
        return None
    try:
        return CheckpointReport.model_validate(json.loads(raw))
    except (ValueError, ValidationError):
        return None


def checkpoint_time(report: CheckpointReport | None) -> float | None:
    """When the checkpoint was written (Unix seconds), or None when absent or unreadable."""
    updated = _parse_time(report.updated_at) if report is not None else None
    return None if updated is None else updated.timestamp()


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _condition(previous: list[dict[str, Any]], generation: int, now: datetime) -> Any:
    """A maker of conditions that keeps ``lastTransitionTime`` while a condition's status stays the same."""

    def make(type_: str, ok: bool, reason: str, message: str = "") -> dict[str, Any]:
        status = "True" if ok else "False"
        old = next((c for c in previous if c.get("type") == type_), None)
        since = old["lastTransitionTime"] if old and old.get("status") == status else _iso(now)
        return {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message[:1024],
            "lastTransitionTime": since,
            "observedGeneration": generation,
        }

    return make


def _degradation(
    spec: CdcPipelineSpec, checkpoints: dict[str, CheckpointReport | None], now: datetime, stale_after: float
) -> tuple[str, str] | None:
    """(reason, message) of the most important problem the replicators report, or None."""
    errors, lagging, stale = [], [], []
    for node, report in sorted(checkpoints.items()):
        if report is None:
            continue  # never written yet: Progressing, not Degraded
        updated = _parse_time(report.updated_at)
        if not spec.paused and (updated is None or (now - updated).total_seconds() > stale_after):
            stale.append(node)
        for dest in report.destinations:
            if dest.last_error:
                errors.append(f"{node}/{dest.name}: {dest.last_error[:MAX_ERROR]}")
            if dest.lag_seconds is not None and dest.lag_seconds > spec.lag_threshold_seconds:
                lagging.append(f"{node}/{dest.name}")
    if errors:
        return "DestinationUnavailable", "; ".join(errors)
    if stale:
        return "CheckpointStale", f"no checkpoint for over {stale_after:.0f}s from: {', '.join(stale)}"
    if lagging:
        return "LagAboveThreshold", f"lag above {spec.lag_threshold_seconds}s: {', '.join(lagging)}"
    return None


def _ready(outcome: Outcome, paused: bool, ready: int, desired: int) -> tuple[bool, str, str]:
    if not outcome.ok and not outcome.transient:
        return False, outcome.reason, outcome.message
    if paused:
        return False, "Paused", "spec.paused is true: replicators are scaled to zero"
    if outcome.ok and not outcome.nodes:
        return False, "NoNodesFound", "no Cassandra nodes: no pod matches spec.source.podSelector"
    if ready < desired or desired == 0:
        return False, "ReplicatorsNotReady", f"{ready}/{desired} replicators ready"
    return True, "ReplicatorsReady", f"{ready}/{desired} replicators ready"


def _phase(outcome: Outcome, paused: bool, degraded: bool, ready: bool) -> str:
    if paused:
        return "Paused"
    if not outcome.ok and not outcome.transient:
        return "Failed"
    if degraded:
        return "Degraded"
    return "Running" if ready else "Pending"


def _nodes_summary(checkpoints: dict[str, CheckpointReport | None]) -> tuple[list[dict[str, Any]], list[float]]:
    """Bounded per node/destination summary, and every lag seen."""
    nodes, lags = [], []
    for node in sorted(checkpoints)[:256]:
        report = checkpoints[node]
        entry: dict[str, Any] = {"node": node, "destinations": []}
        if report is not None:
            entry["updatedAt"] = report.updated_at
            for dest in report.destinations[:16]:
                d: dict[str, Any] = {"name": dest.name}
                if dest.position is not None:
                    d["position"] = dest.position[:256]
                if dest.lag_seconds is not None:
                    d["lagSeconds"] = round(dest.lag_seconds, 3)
                    lags.append(dest.lag_seconds)
                if dest.last_error:
                    d["lastError"] = dest.last_error[:MAX_ERROR]
                entry["destinations"].append(d)
        nodes.append(entry)
    return nodes, lags


def compute(
    body: dict[str, Any],
    outcome: Outcome,
    *,
    replicas: list[Replicas],
    checkpoints: dict[str, CheckpointReport | None],
    now: datetime,
    stale_after: float = 120.0,
) -> dict[str, Any]:
    """The whole ``status`` of a pipeline (wire format)."""
    generation = int(body["metadata"].get("generation", 1))
    previous = list((body.get("status") or {}).get("conditions") or [])
    spec = CdcPipelineSpec.model_validate(body["spec"]) if outcome.ok else None
    paused = bool(body["spec"].get("paused", False))
    nodes_known = len(outcome.nodes) if outcome.ok else len(replicas)
    desired = 0 if paused else nodes_known
    ready = sum(1 for r in replicas if r.ready >= 1)
    rolling = outcome.ok and not paused and (len(replicas) < desired or not all(r.rolled_out for r in replicas))
    if outcome.transient:
        degraded: tuple[str, str] | None = (outcome.reason, outcome.message)
    else:
        degraded = _degradation(spec, checkpoints, now, stale_after) if spec else None
    ready_c = _ready(outcome, paused, ready, desired)
    cond = _condition(previous, generation, now)
    nodes, lags = _nodes_summary(checkpoints)
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": _phase(outcome, paused, degraded is not None, ready_c[0]),
        "conditions": [
            cond("Ready", *ready_c),
            cond("Progressing", rolling, "RollingOut" if rolling else "RolloutComplete"),
            cond("Degraded", degraded is not None, *(degraded or ("AsExpected", ""))),
            cond("Paused", paused, "Paused" if paused else "Running"),
        ],
        "replicators": f"{ready}/{desired}",
        "readyReplicators": ready,
        "desiredReplicators": desired,
        "nodeCount": nodes_known,
        "destinationCount": len(body["spec"].get("destinations", [])),
        "nodes": nodes,
        "maxLagSeconds": round(max(lags), 3) if lags else None,
    }
    if outcome.config_hash:
        status["configHash"] = outcome.config_hash
    return status


# Fields whose change alone does not justify a patch before min_interval has passed.
_VOLATILE = ("maxLagSeconds", "nodes")


def should_patch(
    old: dict[str, Any] | None, new: dict[str, Any], seconds_since_last: float, min_interval: float
) -> bool:
    if old is None:
        return True

    def stable(s: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in s.items() if k not in _VOLATILE}
        # Which nodes and destinations exist, and their errors, are meaningful; lag and positions move.
        out["_errors"] = [
            (n.get("node"), d.get("name"), d.get("lastError")) for n in s.get("nodes") or [] for d in n["destinations"]
        ]
        return out

    if stable(old) != stable(new):
        return True
    return old != new and seconds_since_last >= min_interval
