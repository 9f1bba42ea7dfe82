"""What tests use: start a runner as a subprocess, look into the pods it runs, stop it::

    with PodRunner(kubeconfig, state_dir, namespace=ns) as runner:
        ...  # create a Deployment; the runner binds and runs its pod
        runner.pids(ns, pod_name)            # {"container": pid or None}
        runner.volume(ns, pod_name, "data")  # the local directory behind a volume
        runner.log(ns, pod_name, "app")      # the container's stdout+stderr
        delete_workloads(api_client, ns)     # before the runner stops: see below

Stop the runner only after the namespace's pods are gone: a pod being deleted waits for its
node to confirm that its processes ended, and with no runner nobody does, so the namespace
would hang in Terminating. ``delete_workloads`` deletes Deployments (foreground) and pods
and waits until none is left; delete your own owners first (a CdcPipeline: its Deployments
go with it, and an operator would otherwise recreate them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


class PodRunnerError(RuntimeError):
    pass


class PodRunner:
    def __init__(
        self,
        kubeconfig: str | Path,
        state_dir: str | Path,
        *,
        namespace: str | None = None,
        node_name: str = "lab-node",
        selector: str | None = None,
        path_map: dict[str, str] | None = None,
        entrypoints: dict[str, str] | None = None,
        start_timeout: float = 60,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.node_name = node_name
        self.start_timeout = start_timeout
        self.argv: list[str] = [
            sys.executable,
            "-m",
            "e2e.podrunner",
            "--kubeconfig",
            str(kubeconfig),
            "--state-dir",
            str(self.state_dir),
            "--node-name",
            node_name,
            "--ready-file",
            str(self.state_dir / "ready"),
        ]
        if namespace:
            self.argv += ["--namespace", namespace]
        if selector:
            self.argv += ["--selector", selector]
        for k, v in (path_map or {}).items():
            self.argv += ["--path-map", f"{k}={v}"]
        for k, v in (entrypoints or {}).items():
            self.argv += ["--entrypoint", f"{k}={v}"]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        return self.state_dir / "runner.log"

    def start(self) -> PodRunner:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "ready").unlink(missing_ok=True)
        with self.log_file.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + self.start_timeout
        while not (self.state_dir / "ready").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise PodRunnerError(f"the pod runner did not start:\n{self.runner_log()[-3000:]}")
            time.sleep(0.1)
        return self

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM: the runner stops its processes (bounded grace) and exits."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> PodRunner:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- looking into pods -------------------------------------------------------------------

    def runner_log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def pod_root(self, namespace: str, pod: str) -> Path:
        """The newest local root of a pod by that name (a recreated pod gets a new uid, a new root)."""
        roots = sorted((self.state_dir / "pods").glob(f"{namespace}_{pod}_*"), key=lambda p: p.stat().st_mtime)
        if not roots:
            raise PodRunnerError(f"pod {namespace}/{pod} has no root under {self.state_dir}")
        return roots[-1]

    def volume(self, namespace: str, pod: str, volume: str) -> Path:
        return self.pod_root(namespace, pod) / "volumes" / volume

    def log(self, namespace: str, pod: str, container: str) -> str:
        path = self.pod_root(namespace, pod) / "logs" / f"{container}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def pids(self, namespace: str, pod: str) -> dict[str, int | None]:
        """Container name -> local pid while it runs (None once it stopped); {} before the pod starts."""
        try:
            path = self.pod_root(namespace, pod) / "pids.json"
        except PodRunnerError:
            return {}
        return dict(json.loads(path.read_text())) if path.exists() else {}


def delete_workloads(api: Any, namespace: str, timeout: float = 60) -> None:
    """Delete the namespace's Deployments and pods and wait until no pod is left (the runner must run)."""
    from kubernetes import client  # noqa: PLC0415 - keeps importing this module (and starting a runner) light

    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.delete_collection_namespaced_deployment(namespace, propagation_policy="Foreground")
    deadline = time.monotonic() + timeout
    while apps.list_namespaced_replica_set(namespace).items:
        if time.monotonic() > deadline:
            raise PodRunnerError(f"replica sets of {namespace} still there after {timeout}s")
        time.sleep(0.3)
    core.delete_collection_namespaced_pod(namespace)
    while pods := core.list_namespaced_pod(namespace).items:
        if time.monotonic() > deadline:
            names = [p.metadata.name for p in pods if p.metadata]
            raise PodRunnerError(f"pods of {namespace} still there after {timeout}s: {names}")
        time.sleep(0.3)


def pid_alive(pid: int) -> bool:
    """True while a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
