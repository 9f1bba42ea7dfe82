"""Status reporting: what the kubelet would post to pods/status, computed from our processes.

The runner owns a bound pod's whole status, so it sends it as one merge patch, and only
when it differs from what was sent last (the API server sees one write per change).
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from e2e.podrunner.kube import MERGE_PATCH, Obj, now_rfc3339
from e2e.podrunner.sandbox import POD_IP
from e2e.podrunner.supervise import Container, PodProcesses, Terminated


def _terminated(t: Terminated) -> dict[str, Any]:
    out: dict[str, Any] = {
        "exitCode": t.exit_code,
        "reason": t.reason,
        "startedAt": t.started_at,
        "finishedAt": t.finished_at,
    }
    if t.signal is not None:
        out["signal"] = t.signal
    return out


def _container_status(c: Container, now: float, waiting_reason: str = "ContainerCreating") -> dict[str, Any]:
    if c.proc is not None:
        state: dict[str, Any] = {"running": {"startedAt": c.started_at}}
    elif c.wants_start and c.ever_started and now < c.next_start:
        state = {"waiting": {"reason": "CrashLoopBackOff", "message": f"back-off restarting {c.name}"}}
    elif c.terminated is not None:
        state = {"terminated": _terminated(c.terminated)}
    else:
        state = {"waiting": {"reason": waiting_reason}}
    out = {
        "name": c.name,
        "image": c.spec.get("image", ""),
        "imageID": "",
        "containerID": f"podrunner://{c.proc.pid}" if c.proc is not None else "",
        "ready": c.ready,
        "started": c.proc is not None,
        "restartCount": c.restart_count,
        "state": state,
    }
    if c.last_terminated is not None:
        out["lastState"] = {"terminated": _terminated(c.last_terminated)}
    return out


def phase(procs: PodProcesses) -> str:
    if procs.init_failed():
        return "Failed"
    if not procs.done():
        return "Running" if any(c.ever_started for c in procs.containers) else "Pending"
    codes = [c.terminated.exit_code if c.terminated else 0 for c in procs.containers]
    return "Succeeded" if all(code == 0 for code in codes) else "Failed"


def desired_status(
    pod: Obj,
    procs: PodProcesses | None,
    now: float,
    memory: dict[str, Any],
    waiting: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The pod's status; ``procs`` None means not started yet (``waiting`` says why).

    ``memory`` is this pod's scratch dict kept by the caller: start time and condition
    transition times live there, so an unchanged status computes to the same dict."""
    pod_phase = "Pending" if procs is None else phase(procs)
    if procs is None:
        reason, message = waiting or ("ContainerCreating", "")
        statuses = [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": "",
                "ready": False,
                "started": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": reason, "message": message} if message else {"reason": reason}},
            }
            for c in pod["spec"]["containers"]
        ]
    else:
        waiting_reason = "ContainerCreating" if procs.initialized() else "PodInitializing"
        statuses = [_container_status(c, now, waiting_reason) for c in procs.containers]
    ready = pod_phase == "Running" and all(s["ready"] for s in statuses)
    running = pod_phase in ("Running", "Succeeded", "Failed")
    truth = {
        "PodScheduled": True,
        "PodReadyToStartContainers": procs is not None,
        "Initialized": procs.initialized() if procs else not pod["spec"].get("initContainers"),
        "ContainersReady": ready,
        "Ready": ready,
    }
    return {
        "phase": pod_phase,
        "conditions": _conditions(pod, truth, memory.setdefault("since", {})),
        "hostIP": POD_IP,
        "hostIPs": [{"ip": POD_IP}],
        "podIP": POD_IP if running else None,
        "podIPs": [{"ip": POD_IP}] if running else None,
        "startTime": memory.setdefault("startTime", (pod.get("status") or {}).get("startTime") or now_rfc3339()),
        "containerStatuses": statuses,
        "initContainerStatuses": [_container_status(c, now) for c in procs.init_containers] if procs else None,
        "qosClass": (pod.get("status") or {}).get("qosClass") or "BestEffort",
    }


def _conditions(pod: Obj, truth: dict[str, bool], since: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """Keep a condition's lastTransitionTime while its status holds (availability counts from it)."""
    if not since:
        for c in (pod.get("status") or {}).get("conditions") or []:
            since[c["type"]] = (c["status"], c.get("lastTransitionTime") or now_rfc3339())
    out = []
    for kind, value in truth.items():
        status = "True" if value else "False"
        if since.get(kind, ("", ""))[0] != status:
            since[kind] = (status, now_rfc3339())
        cond = {"type": kind, "status": status, "lastTransitionTime": since[kind][1]}
        if kind in ("Ready", "ContainersReady") and not value:
            cond["reason"] = "ContainersNotReady"
        out.append(cond)
    return out


class StatusReporter:
    def __init__(self, core: client.CoreV1Api) -> None:
        self.core = core
        self.sent: dict[str, dict[str, Any]] = {}  # by pod uid

    def report(self, pod: Obj, status: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        # lastTransitionTime and startTime are stable by construction; compare everything.
        if self.sent.get(uid) == status:
            return
        meta = pod["metadata"]
        self.core.patch_namespaced_pod_status(
            meta["name"], meta["namespace"], {"status": status}, _content_type=MERGE_PATCH
        )
        self.sent[uid] = status

    def forget(self, uid: str) -> None:
        self.sent.pop(uid, None)
