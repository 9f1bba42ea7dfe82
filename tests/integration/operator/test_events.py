"""Kubernetes Events on CdcPipelines and MaskingPolicies, written by the real operator into the lab's API
server: Warnings for what the user must fix, Normals for what happened, each told once (resyncs and a
restarted operator repeat nothing), and repeats of one event folded into its series."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cdc_operator.events import EventRecorder, EventSpec
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.operator.conftest import Cluster, RunningOperator, example
from tests.integration.replicator.running import http_get

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Told:
    """An Event as events.k8s.io/v1 has it (read through core/v1, whose model also takes the controllers'
    legacy events without an eventTime)."""

    type: str
    reason: str
    note: str
    kind: str
    reporting_controller: str
    count: int
    at: datetime


def events_of(kube_api: Any, namespace: str, uid: str) -> list[Told]:
    items = client.CoreV1Api(kube_api).list_namespaced_event(namespace).items
    told = [
        Told(e.type, e.reason, e.message, e.involved_object.kind, e.reporting_component or "",
             e.series.count if e.series else 1, e.event_time or e.metadata.creation_timestamp)
        for e in items
        if e.involved_object.uid == uid
    ]  # fmt: skip
    return sorted(told, key=lambda e: e.at)


def reasons(kube_api: Any, namespace: str, uid: str) -> list[tuple[str, str]]:
    return [(e.type, e.reason) for e in events_of(kube_api, namespace, uid)]


def failed_reconciles(operator: RunningOperator, pipeline: str, reason: str) -> float:
    status, text = http_get(f"http://127.0.0.1:{operator.metrics_port}/metrics")
    if status != 200:
        return 0.0
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "cdc_operator_reconcile_errors_total" and s.labels == {"pipeline": pipeline, "reason": reason}
    )


def test_events_tell_a_pipelines_history_once(
    kube_api: Any, kube_namespace: str, lab: dict[str, Any], vault_secrets: str, run_operator: Any
) -> None:
    ns = kube_namespace
    k = Cluster(kube_api, ns, run_operator(ns, vault=False))  # the chart's default: no Vault configured
    k.core.create_namespaced_secret(
        ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="timescale-login"), string_data={"username": "u", "password": "p"}
        ),
    )
    uid = k.create(example("pipeline-three-nodes.yaml", vault_secrets))["metadata"]["uid"]

    def has(event: tuple[str, str], of: str = uid) -> bool:
        return event in reasons(kube_api, ns, of)

    # A reference the user must fix: Warning, naming what is missing.
    k.eventually(lambda: has(("Warning", "MaskingPolicyNotFound")), "a Warning MaskingPolicyNotFound")
    (missing,) = [e for e in events_of(kube_api, ns, uid) if e.reason == "MaskingPolicyNotFound"]
    assert missing.note == "MaskingPolicy customer-pii not found"
    assert missing.reporting_controller == "cdc.cassandra-cdc.io/operator"
    assert missing.kind == "CdcPipeline"

    # The policy arrives (Normal Accepted on it); the pipeline names Vault paths and no Vault is configured.
    policy_uid = k.create(example("masking-policy.yaml", vault_secrets))["metadata"]["uid"]
    k.eventually(lambda: has(("Warning", "VaultNotConfigured")), "a Warning VaultNotConfigured")
    k.eventually(lambda: has(("Normal", "Accepted"), policy_uid), "a Normal Accepted on the MaskingPolicy")

    # Resyncs (every 2 s here) that find the same problem say nothing more.
    pipeline = f"{ns}/shop"
    seen = failed_reconciles(k.operator, pipeline, "VaultNotConfigured")
    k.eventually(lambda: failed_reconciles(k.operator, pipeline, "VaultNotConfigured") >= seen + 3, "3 more resyncs")
    assert reasons(kube_api, ns, uid) == [("Warning", "MaskingPolicyNotFound"), ("Warning", "VaultNotConfigured")]

    # Nor does an operator restarted over the same state: the stored status already tells it.
    k.operator.stop()
    k.operator = run_operator(ns, vault=False)
    k.eventually(lambda: failed_reconciles(k.operator, pipeline, "VaultNotConfigured") >= 3, "3 resyncs after restart")
    assert reasons(kube_api, ns, uid) == [("Warning", "MaskingPolicyNotFound"), ("Warning", "VaultNotConfigured")]

    # With Vault, it reconciles: Normal Reconciled, and the Deployments roll out (the controller-manager
    # creates their pods at once; no kubelet runs them, so the replicators are not ready).
    k.operator.stop()
    k.operator = run_operator(ns)
    k.eventually(lambda: has(("Normal", "Reconciled")), "a Normal Reconciled")
    k.eventually(lambda: has(("Normal", "RolledOut")), "a Normal RolledOut")
    (reconciled,) = [e for e in events_of(kube_api, ns, uid) if e.reason == "Reconciled"]
    assert reconciled.note.endswith("applied for 3 replicator(s)")

    # Pause and resume.
    k.patch("cdcpipelines", "shop", {"spec": {"paused": True}})
    k.eventually(lambda: has(("Normal", "Paused")), "a Normal Paused")
    k.patch("cdcpipelines", "shop", {"spec": {"paused": False}})
    k.eventually(lambda: has(("Normal", "Resumed")), "a Normal Resumed")

    # What a person sees.
    kubectl = [lab["kubernetes"]["kubectl"], "--kubeconfig", lab["kubernetes"]["kubeconfig"], "-n", ns]
    described = subprocess.run(
        [*kubectl, "describe", "cdcpipeline", "shop"], capture_output=True, text=True, check=True
    )
    events = described.stdout.split("Events:", 1)[1]
    for line in ("Warning  MaskingPolicyNotFound", "Warning  VaultNotConfigured", "Normal   Reconciled",
                 "Normal   Paused", "Normal   Resumed"):  # fmt: skip
        assert line in events, described.stdout
    assert reasons(kube_api, ns, uid).count(("Warning", "VaultNotConfigured")) == 1


def test_repeats_join_the_series_of_one_event(kube_api: Any, kube_namespace: str) -> None:
    """The recorder's series, against the real API server: repeats within the window add to one Event's
    count (client-go's semantics); after a quiet window, the next occurrence is a new Event."""
    ns = kube_namespace
    cm = client.CoreV1Api(kube_api).create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="subject"))
    )
    subject = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": kube_api.sanitize_for_serialization(cm.metadata)}
    now = [1000.0]
    wall = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    recorder = EventRecorder(
        kube_api, instance="test", clock=lambda: now[0], wall=lambda: wall + timedelta(seconds=now[0])
    )
    failing = EventSpec("Warning", "ApiError", "Kubernetes API error 503: Service Unavailable", "Reconcile")

    for step in (0, 10, 20, 90):  # four occurrences over 90 s
        now[0] = 1000.0 + step
        recorder.record(subject, failing)
    (event,) = events_of(kube_api, ns, cm.metadata.uid)
    assert event.count == 4  # written at the first repeat, then at most every 60 s: 90 s is past that
    assert event.note == failing.note

    recorder.record(subject, EventSpec("Normal", "Reconciled", "config abc applied", "Reconcile"))
    assert len(events_of(kube_api, ns, cm.metadata.uid)) == 2  # not isomorphic: its own Event

    now[0] += 400  # quiet for longer than the series window: the series has ended
    recorder.record(subject, failing)
    assert [(e.reason, e.count) for e in events_of(kube_api, ns, cm.metadata.uid)] == [
        ("ApiError", 4),
        ("Reconciled", 1),
        ("ApiError", 1),
    ]
