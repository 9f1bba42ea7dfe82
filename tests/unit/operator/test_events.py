"""Which Events a status change deserves (pure): transitions only, so resyncs and restarts say nothing new."""

from __future__ import annotations

from typing import Any

import pytest
from cdc_operator.events import EventSpec, pipeline_events, policy_events

pytestmark = pytest.mark.unit


def status(**conditions: tuple[str, str, str]) -> dict[str, Any]:
    """A status with conditions given as type=(status, reason, message)."""
    out: dict[str, Any] = {"conditions": [], "configHash": "h1", "desiredReplicators": 3, "replicators": "3/3"}
    for type_, (st, reason, message) in conditions.items():
        out["conditions"].append({"type": type_, "status": st, "reason": reason, "message": message})
    return out


RUNNING = status(
    Ready=("True", "ReplicatorsReady", "3/3 replicators ready"),
    Progressing=("False", "RolloutComplete", ""),
    Degraded=("False", "AsExpected", ""),
    Paused=("False", "Running", ""),
)


def reasons(events: list[EventSpec]) -> list[tuple[str, str]]:
    return [(e.type, e.reason) for e in events]


def test_an_unchanged_status_says_nothing() -> None:
    assert pipeline_events(RUNNING, RUNNING) == []


def test_a_missing_reference_is_a_warning_told_once() -> None:
    failing = status(Ready=("False", "VaultNotConfigured", "Vault path cdc/pg is referenced; no Vault configured"))
    del failing["configHash"]  # nothing was applied
    events = pipeline_events(None, failing)
    assert events == [
        EventSpec("Warning", "VaultNotConfigured", "Vault path cdc/pg is referenced; no Vault configured", "Reconcile")
    ]
    assert pipeline_events(failing, failing) == []
    other = status(Ready=("False", "MaskingPolicyNotFound", "MaskingPolicy customer-pii not found"))
    del other["configHash"]
    assert reasons(pipeline_events(failing, other)) == [("Warning", "MaskingPolicyNotFound")]


def test_replicators_on_their_way_are_no_warning() -> None:
    starting = status(Ready=("False", "ReplicatorsNotReady", "0/3 replicators ready"))
    assert ("Warning", "ReplicatorsNotReady") not in reasons(pipeline_events(None, starting))


def test_a_new_config_is_reconciled_and_rolled_out() -> None:
    rolling = {**RUNNING, "configHash": "h2"}
    rolling["conditions"] = [
        {**c, "status": "True", "reason": "RollingOut"} if c["type"] == "Progressing" else c
        for c in RUNNING["conditions"]
    ]
    assert reasons(pipeline_events(RUNNING, rolling)) == [("Normal", "Reconciled"), ("Normal", "RollingOut")]
    done = {**RUNNING, "configHash": "h2"}
    (event,) = pipeline_events(rolling, done)
    assert (event.reason, event.note) == ("RolledOut", "config h2 rolled out: 3/3 replicators ready")


def test_a_rollout_done_before_the_status_saw_it_is_told_done() -> None:
    assert reasons(pipeline_events(RUNNING, {**RUNNING, "configHash": "h2"})) == [
        ("Normal", "Reconciled"),
        ("Normal", "RolledOut"),
    ]


def test_pause_and_resume_but_a_pause_is_not_a_rollout() -> None:
    rolling = status(Progressing=("True", "RollingOut", ""), Paused=("False", "Running", ""))
    paused = status(Progressing=("False", "RolloutComplete", ""), Paused=("True", "Paused", ""))
    assert reasons(pipeline_events(rolling, paused)) == [("Normal", "Paused")]
    assert reasons(pipeline_events(paused, RUNNING)) == [("Normal", "Resumed")]


def test_degraded_warns_with_its_reason_and_recovery_is_told() -> None:
    degraded = status(Degraded=("True", "DestinationUnavailable", "node1/warehouse: connection refused"))
    (event,) = pipeline_events(status(Degraded=("False", "AsExpected", "")), degraded)
    assert event == EventSpec(
        "Warning", "DestinationUnavailable", "Degraded: node1/warehouse: connection refused", "Observe"
    )
    assert pipeline_events(degraded, degraded) == []
    stale = status(Degraded=("True", "CheckpointStale", "no checkpoint for over 120s from: node1"))
    assert reasons(pipeline_events(degraded, stale)) == [("Warning", "CheckpointStale")]
    (recovered,) = pipeline_events(stale, status(Degraded=("False", "AsExpected", "")))
    assert (recovered.type, recovered.reason, recovered.note) == (
        "Normal",
        "Recovered",
        "no longer Degraded (CheckpointStale)",
    )


def test_a_policy_is_accepted_per_generation_and_its_users_are_told() -> None:
    first = {"observedGeneration": 1, "ruleCount": 3, "pipelines": []}
    assert reasons(policy_events(None, first)) == [("Normal", "Accepted")]
    assert policy_events(first, first) == []
    used = {**first, "pipelines": ["shop"]}
    (event,) = policy_events(first, used)
    assert (event.reason, event.note) == ("UsersChanged", "used by 1 pipeline(s): shop")
    assert reasons(policy_events(used, {**used, "observedGeneration": 2})) == [("Normal", "Accepted")]
