"""restartPolicy: Always restarts a failing container (with backoff); Never leaves the pod Failed."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from e2e.podrunner.api import PodRunner
from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration


def failing_pod(name: str, policy: str, code: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": policy,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "app", "image": "busybox", "command": ["sh", "-c", f"echo started; exit {code}"]}],
        },
    }


def test_always_restarts_a_failing_container_and_never_leaves_it_failed(
    kube_api: Any, kube_namespace: str, pod_runner: PodRunner
) -> None:
    core = client.CoreV1Api(kube_api)
    ns = kube_namespace
    core.create_namespaced_pod(ns, failing_pod("always", "Always", 1))
    core.create_namespaced_pod(ns, failing_pod("never", "Never", 3))

    def restarted_twice() -> Any:
        pod = core.read_namespaced_pod("always", ns)
        statuses = pod.status.container_statuses or []
        return pod if statuses and statuses[0].restart_count >= 2 else None

    pod = eventually(restarted_twice, 60, "two restarts of the failing container")
    (status,) = pod.status.container_statuses
    assert pod.status.phase == "Running"  # a restarting pod is still Running, never Failed
    assert status.last_state.terminated.exit_code == 1
    assert status.last_state.terminated.reason == "Error"
    assert pod_runner.log(ns, "always", "app").count("started") >= 2

    def failed() -> Any:
        got = core.read_namespaced_pod("never", ns)
        return got if got.status.phase == "Failed" else None

    never = eventually(failed, 60, "the Never pod to fail")
    (status,) = never.status.container_statuses
    assert status.restart_count == 0
    assert status.state.terminated.exit_code == 3
