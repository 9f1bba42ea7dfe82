"""Exec probes run inside the container's mount namespace; a failing liveness probe restarts it."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from e2e.podrunner.api import PodRunner
from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration


def sleeper(name: str, script: str, probes: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "app",
                    "image": "busybox",
                    "command": ["sh", "-c", script],
                    "volumeMounts": [{"name": "data", "mountPath": "/podrunner-test/data"}],
                    **probes,
                }
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    }


def test_exec_readiness_sees_the_mounts_and_failing_liveness_restarts(
    kube_api: Any, kube_namespace: str, pod_runner: PodRunner
) -> None:
    core = client.CoreV1Api(kube_api)
    ns = kube_namespace
    # The file is in the emptyDir, seen at that path only inside the container: the probe passes
    # only if it runs in the container's mount namespace.
    ready_when_touched = {
        "readinessProbe": {"exec": {"command": ["test", "-f", "/podrunner-test/data/healthy"]}, "periodSeconds": 1},
    }
    core.create_namespaced_pod(
        ns, sleeper("probed", "touch /podrunner-test/data/healthy; exec sleep 300", ready_when_touched)
    )
    never_alive = {"livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 1}}
    core.create_namespaced_pod(ns, sleeper("unhealthy", "exec sleep 300", never_alive))

    def ready() -> bool:
        statuses = core.read_namespaced_pod("probed", ns).status.container_statuses or []
        return bool(statuses and statuses[0].ready)

    eventually(ready, 60, "the exec readiness probe to pass")
    assert (pod_runner.volume(ns, "probed", "data") / "healthy").exists()

    def restarted() -> Any:
        statuses = core.read_namespaced_pod("unhealthy", ns).status.container_statuses or []
        return statuses[0] if statuses and statuses[0].restart_count >= 1 else None

    status = eventually(restarted, 60, "the liveness probe to restart the container")
    assert status.last_state.terminated.exit_code == 137  # SIGKILL
