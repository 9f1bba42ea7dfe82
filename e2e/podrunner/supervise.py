"""Process supervision: one local process per container, restarted per the pod's restartPolicy.

A container is started as ``unshare --mount python launch.py spec.json``: the launcher
bind-mounts the pod's volumes at their mountPaths in a private mount namespace and execs the
container's command, keeping the pid. Each container leads its own process group (signals
reach its children too). stdout and stderr go to ``logs/<container>.log`` in the pod root,
appended across restarts.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e.podrunner import probes
from e2e.podrunner.kube import Obj, now_rfc3339

LAUNCHER = Path(__file__).with_name("launch.py")
BACKOFF_RESET_SECONDS = 60  # a container that ran this long restarts with the initial backoff


@dataclass
class Terminated:
    exit_code: int
    reason: str
    started_at: str
    finished_at: str
    signal: int | None = None


@dataclass
class ProbeState:
    """Bookkeeping (successThreshold/failureThreshold) of one readiness or liveness probe."""

    spec: dict[str, Any]
    due: float = 0.0
    successes: int = 0
    failures: int = 0


@dataclass
class Container:
    spec: Obj
    argv: list[str]
    env: dict[str, str]
    launch_file: Path
    log_file: Path
    backoff: float
    proc: subprocess.Popen[bytes] | None = None
    restart_count: int = 0
    started_at: str | None = None
    started_mono: float = 0.0
    terminated: Terminated | None = None  # the current state when not running
    last_terminated: Terminated | None = None
    next_start: float = 0.0  # monotonic; > now means CrashLoopBackOff
    ready: bool = False
    readiness: ProbeState | None = None
    liveness: ProbeState | None = None
    ever_started: bool = False
    wants_start: bool = True

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None


@dataclass
class PodProcesses:
    """The containers of one pod and its restart policy.

    Init containers run one at a time, each to success, before any container starts; a failed
    one is retried (with backoff) unless the pod's restartPolicy is Never, which fails the pod.
    """

    restart_policy: str
    containers: list[Container]
    backoff_initial: float
    backoff_max: float
    init_containers: list[Container] = field(default_factory=list)
    terminating: bool = False
    kill_deadline: float = 0.0

    @property
    def everything(self) -> list[Container]:
        return [*self.init_containers, *self.containers]

    def initialized(self) -> bool:
        return all(_succeeded(c) for c in self.init_containers)

    def init_failed(self) -> bool:
        return any(
            c.terminated is not None and c.proc is None and not c.wants_start for c in self.init_containers
        ) and (not self.initialized())

    def tick(self, now: float) -> bool:
        """Reap exits, restart what the policy restarts, run due probes. True when something changed."""
        changed = False
        for c in self.init_containers:
            if _succeeded(c):
                continue
            if c.proc is not None and c.proc.poll() is not None:
                changed = True
                self._reap(c, now, "Never" if self.restart_policy == "Never" else "OnFailure")
            if c.proc is None and c.wants_start and not self.terminating and now >= c.next_start:
                self._start(c, now)
                changed = True
            if not _succeeded(c):
                return changed  # the next one waits for this one
        for c in self.containers:
            if c.proc is not None and c.proc.poll() is not None:
                changed = True
                self._reap(c, now, self.restart_policy)
            if c.proc is None and c.wants_start and not self.terminating and now >= c.next_start:
                self._start(c, now)
                changed = True
            if c.proc is not None and c.readiness is not None and now >= c.readiness.due:
                changed |= self._probe_readiness(c, now)
            if c.proc is not None and c.liveness is not None and now >= c.liveness.due:
                self._probe_liveness(c, now)
        return changed

    def _reap(self, c: Container, now: float, policy: str) -> None:
        assert c.proc is not None
        rc = c.proc.returncode
        sig = -rc if rc < 0 else None
        exit_code = 128 + sig if sig is not None else rc
        reason = "Completed" if exit_code == 0 else "Error"
        c.terminated = Terminated(exit_code, reason, c.started_at or now_rfc3339(), now_rfc3339(), sig)
        c.proc, c.ready = None, False
        restart = policy == "Always" or (policy == "OnFailure" and exit_code != 0)
        c.wants_start = restart and not self.terminating
        if c.wants_start:
            # The kubelet's CrashLoopBackOff, with shorter steps: doubling, capped, reset after a good run.
            if now - c.started_mono >= BACKOFF_RESET_SECONDS:
                c.backoff = self.backoff_initial
            c.next_start = now + c.backoff
            c.backoff = min(c.backoff * 2, self.backoff_max)

    def _start(self, c: Container, now: float) -> None:
        if c.ever_started:
            c.restart_count += 1
            c.last_terminated = c.terminated
        c.log_file.parent.mkdir(parents=True, exist_ok=True)
        with c.log_file.open("ab") as log:
            c.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", sys.executable, "-I", LAUNCHER, c.launch_file],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: signals reach the container's children
            )
        c.ever_started, c.terminated = True, None
        c.started_at, c.started_mono = now_rfc3339(), now
        c.readiness, c.liveness = (
            _probe_state(c.spec, "readinessProbe", now),
            _probe_state(c.spec, "livenessProbe", now),
        )
        c.ready = c.readiness is None  # no probe: ready as soon as it runs

    def _probe_readiness(self, c: Container, now: float) -> bool:
        assert c.readiness is not None
        ok = _run_probe(c, c.readiness, now)
        before = c.ready
        if ok and c.readiness.successes >= c.readiness.spec.get("successThreshold", 1):
            c.ready = True
        elif not ok and c.readiness.failures >= c.readiness.spec.get("failureThreshold", 3):
            c.ready = False
        return c.ready != before

    def _probe_liveness(self, c: Container, now: float) -> None:
        """A container failing its liveness probe is killed; the restart policy decides what next."""
        assert c.liveness is not None
        if not _run_probe(c, c.liveness, now) and c.liveness.failures >= c.liveness.spec.get("failureThreshold", 3):
            _signal(c, signal.SIGKILL)

    # -- termination -------------------------------------------------------------------------

    def terminate(self, grace_seconds: float, now: float) -> None:
        """SIGTERM every container; `kill_if_due` sends SIGKILL once the grace period is over."""
        if self.terminating:
            return
        self.terminating, self.kill_deadline = True, now + grace_seconds
        for c in self.everything:
            c.wants_start = False
            _signal(c, signal.SIGTERM)

    def alive(self) -> bool:
        return any(c.proc is not None and c.proc.poll() is None for c in self.everything)

    def kill_if_due(self, now: float) -> None:
        if self.terminating and now >= self.kill_deadline:
            for c in self.everything:
                _signal(c, signal.SIGKILL)

    def stop(self, grace_seconds: float) -> None:
        """Blocking stop (runner exit): SIGTERM, wait up to the grace period, SIGKILL, reap."""
        now = time.monotonic()
        self.terminate(grace_seconds, now)
        while self.alive() and time.monotonic() < self.kill_deadline:
            time.sleep(0.1)
        for c in self.everything:
            _signal(c, signal.SIGKILL)
            if c.proc is not None:
                c.proc.wait()
                self._reap(c, time.monotonic(), "Never")

    def done(self) -> bool:
        """Nothing runs and nothing will be restarted: the pod's phase is final."""
        return self.init_failed() or all(c.proc is None and not c.wants_start for c in self.containers)

    def write_pids(self, path: Path) -> None:
        """For tests and people: which local pid runs which container now."""
        pids = {c.name: c.pid for c in self.everything}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(pids))
        tmp.replace(path)


def _succeeded(c: Container) -> bool:
    return c.proc is None and c.terminated is not None and c.terminated.exit_code == 0


def _probe_state(spec: Obj, kind: str, now: float) -> ProbeState | None:
    probe = spec.get(kind)
    return ProbeState(probe, due=now + probe.get("initialDelaySeconds", 0)) if probe else None


def _run_probe(c: Container, state: ProbeState, now: float) -> bool:
    assert c.proc is not None
    state.due = now + state.spec.get("periodSeconds", 10)
    ok = probes.probe(state.spec, c.spec, c.proc.pid, c.env)
    state.successes, state.failures = (state.successes + 1, 0) if ok else (0, state.failures + 1)
    return ok


def _signal(c: Container, sig: signal.Signals) -> None:
    if c.proc is None or c.proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):  # it exited between poll and kill
        os.killpg(c.proc.pid, sig)
