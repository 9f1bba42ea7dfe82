"""The runner's main loop: watch pods, bind the unscheduled ones, run ours, report, clean up.

One watch thread feeds pod events into a queue; the main thread does everything else
(binding, starting and reaping processes, probes, status patches, heartbeats) in a loop
that wakes at least twice a second. Keeping the state in one thread keeps it lock-free.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from e2e.podrunner import binding
from e2e.podrunner.config import RunnerConfig, api_server_from_kubeconfig, host_paths_to_keep
from e2e.podrunner.kube import Obj, is_not_found, pod_key, to_dict
from e2e.podrunner.node import NodeAgent, node_labels
from e2e.podrunner.sandbox import Materialiser, Sandbox, SetupError, container_mounts, expand
from e2e.podrunner.status import StatusReporter, desired_status
from e2e.podrunner.supervise import Container, PodProcesses

log = logging.getLogger("podrunner")

SETUP_RETRY_SECONDS = 2.0
EXIT_GRACE_MAX_SECONDS = 10.0  # on runner exit, waiting a replicator's full 60 s helps nobody
DEFAULT_GRACE_SECONDS = 30


@dataclass
class PodWorker:
    """Everything the runner knows about one pod bound to its node."""

    pod: Obj
    sandbox: Sandbox
    procs: PodProcesses | None = None
    waiting: tuple[str, str] | None = None
    next_setup: float = 0.0
    gone: bool = False  # the pod object no longer exists: just stop the processes
    memory: dict[str, Any] = field(default_factory=dict)

    @property
    def deleting(self) -> bool:
        return self.gone or bool(self.pod["metadata"].get("deletionTimestamp"))

    def grace_seconds(self) -> float:
        if self.gone:
            return 0
        meta, spec = self.pod["metadata"], self.pod["spec"]
        grace = meta.get("deletionGracePeriodSeconds")
        return float(grace if grace is not None else spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS))


class Runner:
    def __init__(self, cfg: RunnerConfig) -> None:
        self.cfg = cfg
        self.api = config.new_client_from_config(config_file=str(cfg.kubeconfig))  # type: ignore[no-untyped-call]
        self.core = client.CoreV1Api(self.api)
        self.node = NodeAgent(self.api, cfg.node_name)
        self.labels = node_labels(cfg.node_name)
        self.materialiser = Materialiser(self.api, cfg, api_server_from_kubeconfig(cfg.kubeconfig))
        self.reporter = StatusReporter(self.core)
        self.workers: dict[str, PodWorker] = {}
        self.bound: set[str] = set()  # uids we asked to bind: not again on every event
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.stopping = threading.Event()
        self.synced = threading.Event()

    # -- watching ----------------------------------------------------------------------------

    def _list_and_watch(self) -> None:
        """List, then watch from that resourceVersion; on any error (410 Gone included) list again."""
        api = config.new_client_from_config(config_file=str(self.cfg.kubeconfig))  # type: ignore[no-untyped-call]
        core = client.CoreV1Api(api)
        kwargs: dict[str, Any] = {"label_selector": self.cfg.label_selector} if self.cfg.label_selector else {}
        if self.cfg.namespace:
            list_fn: Any = core.list_namespaced_pod
            kwargs["namespace"] = self.cfg.namespace
        else:
            list_fn = core.list_pod_for_all_namespaces
        while not self.stopping.is_set():
            try:
                listed = list_fn(**kwargs)
                self.events.put(("LIST", [to_dict(api, p) for p in listed.items]))
                w = watch.Watch()  # type: ignore[no-untyped-call]
                rv = listed.metadata.resource_version
                for ev in w.stream(list_fn, resource_version=rv, timeout_seconds=30, **kwargs):  # type: ignore[no-untyped-call]
                    if self.stopping.is_set():
                        w.stop()  # type: ignore[no-untyped-call]
                        break
                    obj = ev["object"]
                    self.events.put((ev["type"], obj if isinstance(obj, dict) else to_dict(api, obj)))
            except Exception as exc:  # any watch failure ends in a fresh list
                if not self.stopping.is_set():
                    log.info("pod watch restarts after %s", exc)
                    time.sleep(1)

    # -- events ------------------------------------------------------------------------------

    def _on_event(self, kind: str, payload: Any) -> None:
        if kind == "LIST":
            seen = {p["metadata"]["uid"] for p in payload}
            for uid, w in self.workers.items():
                if uid not in seen:
                    w.gone = True
            for pod in payload:
                self._on_pod(pod, deleted=False)
            self.synced.set()
        elif kind in ("ADDED", "MODIFIED", "DELETED"):
            self._on_pod(payload, deleted=kind == "DELETED")

    def _on_pod(self, pod: Obj, deleted: bool) -> None:
        meta, spec = pod["metadata"], pod.get("spec", {})
        uid = meta["uid"]
        node = spec.get("nodeName")
        if not node:
            fresh = not deleted and not meta.get("deletionTimestamp") and uid not in self.bound
            if fresh and binding.fits(pod, self.cfg.node_name, self.labels):
                self.bound.add(uid)
                self._bind(pod)
            return
        if node != self.cfg.node_name:
            return
        worker = self.workers.get(uid)
        if deleted:
            if worker is not None:
                worker.gone = True
            return
        if worker is None:
            if meta.get("deletionTimestamp"):
                self._finalise(pod)  # ours but never run by this runner (an earlier one died)
                return
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return
            sandbox = Sandbox.for_pod(self.cfg.state_dir, meta["namespace"], meta["name"], uid)
            worker = self.workers[uid] = PodWorker(pod=pod, sandbox=sandbox)
            log.info("pod %s: taken", pod_key(pod))
        worker.pod = pod

    def _bind(self, pod: Obj) -> None:
        try:
            binding.bind(self.core, pod, self.cfg.node_name)
            log.info("pod %s: bound to %s", pod_key(pod), self.cfg.node_name)
        except client.ApiException as exc:
            log.warning("pod %s: binding failed: %s %s", pod_key(pod), exc.status, exc.reason)
            if exc.status != 409:  # 409: bound already (by us, or another scheduler)
                self.bound.discard(pod["metadata"]["uid"])  # the next re-list (every 30 s) retries

    # -- per-pod work ------------------------------------------------------------------------

    def _setup(self, w: PodWorker) -> PodProcesses:
        pod, spec = w.pod, w.pod["spec"]
        w.sandbox.root.mkdir(parents=True, exist_ok=True)
        volumes = self.materialiser.prepare_volumes(pod, w.sandbox)
        return PodProcesses(
            restart_policy=spec.get("restartPolicy", "Always"),
            containers=self._containers(pod, spec["containers"], volumes, w.sandbox),
            init_containers=self._containers(pod, spec.get("initContainers") or [], volumes, w.sandbox),
            backoff_initial=self.cfg.backoff_initial,
            backoff_max=self.cfg.backoff_max,
        )

    def _containers(self, pod: Obj, specs: list[Obj], volumes: dict[str, Path], sandbox: Sandbox) -> list[Container]:
        """Each container's command line, env and mounts, written out for the launcher."""
        containers = []
        for c in specs:
            env = self.materialiser.container_env(pod, c, sandbox)
            command = c.get("command") or self.cfg.entrypoint(c.get("image", ""))
            if not command:
                raise SetupError(
                    "CreateContainerConfigError",
                    f"container {c['name']}: no command, and image {c.get('image')!r} has no --entrypoint",
                )
            argv = [expand(a, env) for a in [*command, *(c.get("args") or [])]]
            launch = {
                "mounts": container_mounts(c, volumes),
                "workingDir": c.get("workingDir", ""),
                "root": str(sandbox.root),
                "runnerPid": os.getpid(),
                "keep": host_paths_to_keep(),
                "argv": argv,
                "env": env,
            }
            sandbox.launch_spec(c["name"]).write_text(json.dumps(launch, indent=1))
            containers.append(
                Container(
                    spec=c,
                    argv=argv,
                    env=env,
                    launch_file=sandbox.launch_spec(c["name"]),
                    log_file=sandbox.log(c["name"]),
                    backoff=self.cfg.backoff_initial,
                )
            )
        return containers

    def _tick_pod(self, uid: str, w: PodWorker, now: float) -> None:
        if w.procs is None and not w.deleting and now >= w.next_setup:
            try:
                w.procs = self._setup(w)
                w.waiting = None
                log.info("pod %s: starting %s", pod_key(w.pod), [c.name for c in w.procs.containers])
            except SetupError as exc:
                w.waiting, w.next_setup = (exc.reason, exc.message), now + SETUP_RETRY_SECONDS
            except (client.ApiException, OSError, KeyError, ValueError) as exc:
                log.warning("pod %s: setup failed, retrying: %r", pod_key(w.pod), exc)
                w.waiting, w.next_setup = ("CreateContainerError", repr(exc)[:500]), now + SETUP_RETRY_SECONDS
        if w.procs is not None:
            if w.deleting:
                w.procs.terminate(w.grace_seconds(), now)
                w.procs.kill_if_due(now)
            if w.procs.tick(now):
                w.procs.write_pids(w.sandbox.pids_file)
        if w.deleting:
            if w.procs is None or not w.procs.alive():
                if w.procs is not None:
                    w.procs.tick(now)  # reap, so nothing is left behind as a zombie
                    w.procs.write_pids(w.sandbox.pids_file)
                if not w.gone:
                    self._finalise(w.pod)
                log.info("pod %s: stopped", pod_key(w.pod))
                del self.workers[uid]
                self.reporter.forget(uid)
            return
        status = desired_status(w.pod, w.procs, now, w.memory, w.waiting)
        try:
            self.reporter.report(w.pod, status)
        except client.ApiException as exc:
            if not is_not_found(exc):
                log.warning("pod %s: status patch failed: %s %s", pod_key(w.pod), exc.status, exc.reason)

    def _finalise(self, pod: Obj) -> None:
        """What the kubelet does once the containers are gone: delete with grace 0, for this uid only."""
        meta = pod["metadata"]
        try:
            self.core.delete_namespaced_pod(
                meta["name"],
                meta["namespace"],
                grace_period_seconds=0,
                body=client.V1DeleteOptions(
                    grace_period_seconds=0, preconditions=client.V1Preconditions(uid=meta["uid"])
                ),
            )
        except client.ApiException as exc:
            if exc.status not in (404, 409):
                raise

    # -- main loop ---------------------------------------------------------------------------

    def run(self, ready_file: Path | None = None) -> None:
        self.cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self.node.register()
        next_heartbeat = time.monotonic() + self.cfg.heartbeat_seconds
        threading.Thread(target=self._list_and_watch, name="pod-watch", daemon=True).start()
        try:
            while not self.stopping.is_set():
                try:
                    self._guarded("event", self._on_event, *self.events.get(timeout=0.5))
                    while not self.events.empty():
                        self._guarded("event", self._on_event, *self.events.get_nowait())
                except queue.Empty:
                    pass
                if ready_file is not None and self.synced.is_set():
                    ready_file.touch()
                    ready_file = None
                now = time.monotonic()
                for uid, w in list(self.workers.items()):
                    self._guarded(pod_key(w.pod), self._tick_pod, uid, w, now)
                if now >= next_heartbeat:
                    self._guarded("node heartbeat", self._heartbeat)
                    next_heartbeat = now + self.cfg.heartbeat_seconds
        finally:
            self._stop_all()

    @staticmethod
    def _guarded(what: str, fn: Any, *args: Any) -> None:
        """One pod's trouble (an API error, a full disk) is logged, never the end of the runner."""
        try:
            fn(*args)
        except Exception:
            log.exception("%s: unexpected error (retried on the next tick)", what)

    def _heartbeat(self) -> None:
        try:
            self.node.heartbeat()
        except client.ApiException as exc:
            log.warning("node heartbeat failed: %s %s", exc.status, exc.reason)
            if is_not_found(exc):
                self.node.register()  # someone deleted our Node: come back

    def _stop_all(self) -> None:
        """Runner exit: every process gets SIGTERM at once, then SIGKILL after the (capped) grace."""
        now = time.monotonic()
        running = [w.procs for w in self.workers.values() if w.procs is not None]
        for p in running:
            p.terminate(EXIT_GRACE_MAX_SECONDS, now)
        while any(p.alive() for p in running) and time.monotonic() < now + EXIT_GRACE_MAX_SECONDS:
            time.sleep(0.1)
        for p in running:
            p.stop(0)
        for w in self.workers.values():
            if w.procs is not None:
                w.procs.write_pids(w.sandbox.pids_file)
