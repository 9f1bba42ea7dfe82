"""A Deployment, through the lab's real controller-manager and our runner, becomes Available."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from e2e.lab.ports import free_port
from e2e.podrunner.api import PodRunner, pid_alive
from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration


def web_deployment(port: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {
                            "name": "web",
                            "image": "python:3.11",  # ignored: the command runs from the repo's venv
                            "command": ["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                            "ports": [{"name": "http", "containerPort": port}],
                            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
                        }
                    ],
                },
            },
        },
    }


def test_deployment_becomes_available_and_deleting_it_stops_the_process(
    kube_api: Any, kube_namespace: str, pod_runner: PodRunner
) -> None:
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    ns = kube_namespace
    # A pod pinned to another node: the runner must leave it unscheduled.
    foreign = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "elsewhere"},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": "some-other-node"},
            "containers": [{"name": "c", "image": "x", "command": ["sleep", "60"]}],
        },
    }
    core.create_namespaced_pod(ns, foreign)
    apps.create_namespaced_deployment(ns, web_deployment(free_port()))

    def available() -> Any:
        d = apps.read_namespaced_deployment("web", ns)
        return d if (d.status.available_replicas or 0) == 1 else None

    deployment = eventually(available, 90, "the Deployment to become available")
    assert deployment.status.ready_replicas == 1
    conditions = {c.type: c.status for c in deployment.status.conditions}
    assert conditions["Available"] == "True"

    (pod,) = core.list_namespaced_pod(ns, label_selector="app=web").items
    assert pod.spec.node_name == pod_runner.node_name
    assert pod.status.phase == "Running"
    assert pod.status.pod_ip == "127.0.0.1"
    (status,) = pod.status.container_statuses
    assert status.ready
    assert status.started
    assert status.state.running is not None
    assert status.restart_count == 0
    # Events of one watch arrive in order: the runner saw the foreign pod before the web pod.
    assert core.read_namespaced_pod("elsewhere", ns).spec.node_name is None

    pid = pod_runner.pids(ns, pod.metadata.name)["web"]
    assert pid is not None
    assert pid_alive(pid)
    assert "GET / HTTP/1.1" in pod_runner.log(ns, pod.metadata.name, "web")  # the probe's requests

    apps.delete_namespaced_deployment("web", ns, propagation_policy="Foreground")
    eventually(lambda: not core.list_namespaced_pod(ns, label_selector="app=web").items, 60, "the pod to go")
    assert not pid_alive(pid)


def test_a_pod_ignoring_sigterm_is_killed_after_its_grace_period(
    kube_api: Any, kube_namespace: str, pod_runner: PodRunner
) -> None:
    core = client.CoreV1Api(kube_api)
    ns = kube_namespace
    stubborn = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "stubborn"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            # SIG_IGN is inherited: neither the shell nor its sleep dies of SIGTERM.
            "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "trap '' TERM; sleep 300"]}],
        },
    }
    core.create_namespaced_pod(ns, stubborn)

    pid = eventually(lambda: pod_runner.pids(ns, "stubborn").get("c"), 60, "the stubborn container to start")
    core.delete_namespaced_pod("stubborn", ns)
    eventually(lambda: not core.list_namespaced_pod(ns).items, 60, "the pod to be deleted")
    assert not pid_alive(pid)
    assert pod_runner.pids(ns, "stubborn") == {"c": None}
