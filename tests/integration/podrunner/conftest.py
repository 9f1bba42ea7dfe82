"""Fixtures of the pod runner's tests: a runner playing the node for one test namespace."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.podrunner.api import PodRunner, PodRunnerError, delete_workloads


@pytest.fixture
def start_runner(kube_api: Any, kube_namespace: str) -> Iterator[Callable[[PodRunner], PodRunner]]:
    """Starts runners for the test; afterwards deletes the namespace's workloads, then stops them."""
    started: list[PodRunner] = []

    def start(runner: PodRunner) -> PodRunner:
        try:
            runner.start()
        except PodRunnerError as exc:
            pytest.fail(str(exc), pytrace=False)
        started.append(runner)
        return runner

    try:
        yield start
        delete_workloads(kube_api, kube_namespace)
    finally:
        for runner in started:
            runner.stop()


@pytest.fixture
def pod_runner(
    lab: dict[str, Any], kube_namespace: str, tmp_path: Path, start_runner: Callable[[PodRunner], PodRunner]
) -> PodRunner:
    """A runner playing lab-node for the test's namespace only."""
    return start_runner(PodRunner(lab["kubernetes"]["kubeconfig"], tmp_path / "podrunner", namespace=kube_namespace))
