"""Init containers run in order, to success, before the containers; a failed one under Never fails the pod."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from e2e.podrunner.api import PodRunner
from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration


def pod(name: str, policy: str, init_scripts: list[str], main_script: str) -> dict[str, Any]:
    mounts = [{"name": "work", "mountPath": "/podrunner-test/seed"}]

    def container(cname: str, script: str) -> dict[str, Any]:
        return {"name": cname, "image": "busybox", "command": ["sh", "-c", script], "volumeMounts": mounts}

    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": policy,
            "terminationGracePeriodSeconds": 1,
            "initContainers": [container(f"init-{i}", s) for i, s in enumerate(init_scripts)],
            "containers": [container("main", main_script)],
            "volumes": [{"name": "work", "emptyDir": {}}],
        },
    }


def test_init_containers_run_first_in_order_and_a_failure_under_never_fails_the_pod(
    kube_api: Any, kube_namespace: str, pod_runner: PodRunner
) -> None:
    core = client.CoreV1Api(kube_api)
    ns = kube_namespace
    seeded = pod(
        "seeded",
        "Always",
        ["echo one >> /podrunner-test/seed/order", "echo two >> /podrunner-test/seed/order"],
        "cp /podrunner-test/seed/order /podrunner-test/seed/seen; exec sleep 300",
    )
    core.create_namespaced_pod(ns, seeded)
    core.create_namespaced_pod(ns, pod("broken", "Never", ["exit 4"], "touch /podrunner-test/seed/main-ran"))

    def running() -> Any:
        got = core.read_namespaced_pod("seeded", ns)
        return (
            got
            if got.status.phase == "Running" and (pod_runner.volume(ns, "seeded", "work") / "seen").exists()
            else None
        )

    got = eventually(running, 60, "the seeded pod to run its main container")
    assert (pod_runner.volume(ns, "seeded", "work") / "seen").read_text() == "one\ntwo\n"
    assert [s.state.terminated.reason for s in got.status.init_container_statuses] == ["Completed", "Completed"]
    assert {c.type: c.status for c in got.status.conditions}["Initialized"] == "True"

    def failed() -> Any:
        got = core.read_namespaced_pod("broken", ns)
        return got if got.status.phase == "Failed" else None

    broken = eventually(failed, 60, "the broken pod to fail")
    assert broken.status.init_container_statuses[0].state.terminated.exit_code == 4
    assert broken.status.container_statuses[0].state.waiting.reason == "PodInitializing"
    assert not (pod_runner.volume(ns, "broken", "work") / "main-ran").exists()
