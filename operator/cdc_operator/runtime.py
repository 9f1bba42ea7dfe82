"""The operator's state and its two jobs per pipeline: sync (reconcile + status) and status refresh.

kopf handlers and the periodic loop both call :meth:`Runtime.sync_pipeline`; a lock per pipeline
keeps them from interleaving. Blocking client calls run in threads so kopf's event loop stays free.

The periodic loop (started by the startup handler) is our own rather than kopf timers: kopf adds
its finalizer to every object that has a timer, and then deleting a pipeline hangs whenever the
operator is down. Owner references need no finalizer, so we have none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from cdc_operator import events, kube, metrics, status
from cdc_operator.api.masking import MaskingPolicySpec
from cdc_operator.reconcile import Outcome, reconcile
from cdc_operator.render import names
from cdc_operator.vault import VaultReader

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    resync_seconds: float = 60.0  # full reconcile: Vault refresh, discovered nodes, drift
    status_seconds: float = 10.0  # fold checkpoints into status this often
    status_min_interval: float = 30.0  # a patch for moving numbers (lag) at most this often
    checkpoint_stale_seconds: float = 120.0


@dataclass
class _Memory:
    outcome: Outcome | None = None
    last_reconcile: float = 0.0
    last_status: dict[str, Any] | None = None
    last_patch: float = 0.0


@dataclass
class Runtime:
    api: client.ApiClient
    vault: VaultReader | None
    settings: Settings = field(default_factory=Settings)
    recorder: events.EventRecorder = field(init=False)
    _memory: dict[tuple[str, str], _Memory] = field(default_factory=dict)
    _locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.recorder = events.EventRecorder(self.api)

    # -- pipelines ---------------------------------------------------------------------------------

    async def sync_pipeline(self, namespace: str, name: str, *, full: bool = True) -> None:
        key = (namespace, name)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            await asyncio.to_thread(self._sync_blocking, namespace, name, full)

    def _sync_blocking(self, namespace: str, name: str, full: bool) -> None:
        body = kube.get(self.api, kube.PIPELINES, namespace, name)  # fresh: handlers' bodies may be stale
        key = (namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            self._memory.pop(key, None)
            metrics.forget_pipeline(f"{namespace}/{name}")
            return
        memory = self._memory.setdefault(key, _Memory())
        if full or memory.outcome is None:
            started = time.monotonic()
            try:
                memory.outcome = reconcile(self.api, body, self.vault)
            except ApiException as exc:
                self._reconcile_failed(body, "ApiError", f"Kubernetes API error {exc.status}: {exc.reason}")
                raise
            except Exception as exc:
                self._reconcile_failed(body, "InternalError", f"{type(exc).__name__}: {exc}")
                raise
            finally:
                metrics.RECONCILE_DURATION.labels("CdcPipeline").observe(time.monotonic() - started)
            memory.last_reconcile = time.monotonic()
            result = "success" if memory.outcome.ok else "reference_error"
            metrics.RECONCILIATIONS.labels("CdcPipeline", result).inc()
            if not memory.outcome.ok:
                metrics.RECONCILE_ERRORS.labels(f"{namespace}/{name}", memory.outcome.reason).inc()
                log.warning("%s/%s: %s: %s", namespace, name, memory.outcome.reason, memory.outcome.message)
        self._refresh_status(body, memory)

    def _reconcile_failed(self, body: dict[str, Any], reason: str, message: str) -> None:
        """Count and tell a reconcile that raised (kopf or the loop retries it); repeats join one Event's series."""
        meta = body["metadata"]
        metrics.RECONCILIATIONS.labels("CdcPipeline", "error").inc()
        metrics.RECONCILE_ERRORS.labels(f"{meta['namespace']}/{meta['name']}", reason).inc()
        self.recorder.record(body, events.EventSpec("Warning", reason, message, "Reconcile"))

    def _observe(self, namespace: str, name: str) -> tuple[list[status.Replicas], dict[str, Any]]:
        selector = f"{names.PIPELINE_LABEL}={name}"
        replicas = []
        for dep in kube.list_objects(self.api, kube.OWNED_KINDS[0], namespace, selector):
            spec_replicas = int(dep["spec"].get("replicas", 1))
            st = dep.get("status") or {}
            rolled = (
                st.get("observedGeneration", 0) >= dep["metadata"].get("generation", 0)
                and st.get("updatedReplicas", 0) >= spec_replicas
            )
            replicas.append(
                status.Replicas(
                    node=dep["metadata"]["labels"].get(names.NODE_LABEL, ""),
                    desired=spec_replicas,
                    ready=int(st.get("readyReplicas", 0)),
                    updated=int(st.get("updatedReplicas", 0)),
                    rolled_out=rolled,
                )
            )
        checkpoints: dict[str, Any] = {}
        for cm in kube.list_objects(
            self.api, kube.OWNED_KINDS[4], namespace, f"{selector},{names.COMPONENT_LABEL}=checkpoint"
        ):
            node = cm["metadata"]["labels"].get(names.NODE_LABEL, "")
            checkpoints[node] = status.parse_checkpoint((cm.get("data") or {}).get(names.CHECKPOINT_DATA_KEY))
        return replicas, checkpoints

    def _refresh_status(self, body: dict[str, Any], memory: _Memory) -> None:
        meta = body["metadata"]
        outcome = memory.outcome
        assert outcome is not None
        replicas, checkpoints = self._observe(meta["namespace"], meta["name"])
        if outcome.ok:
            checkpoints = {n: checkpoints.get(n) for n in outcome.nodes}
        new = status.compute(
            body,
            outcome,
            replicas=replicas,
            checkpoints=checkpoints,
            now=datetime.now(UTC),
            stale_after=self.settings.checkpoint_stale_seconds,
        )
        metrics.export_pipeline(
            f"{meta['namespace']}/{meta['name']}",
            {r.node: (r.desired, r.ready) for r in replicas},
            {n: status.checkpoint_time(c) for n, c in checkpoints.items()},
            paused=bool(body["spec"].get("paused", False)),
        )
        since = time.monotonic() - memory.last_patch
        if status.should_patch(memory.last_status, new, since, self.settings.status_min_interval):
            kube.patch_status(self.api, kube.PIPELINES, meta["namespace"], meta["name"], new)
            metrics.STATUS_PATCHES.labels("CdcPipeline").inc()
            memory.last_status, memory.last_patch = new, time.monotonic()
            # Told only once the status that records the change is written: compared with the stored
            # status, the same change is never told twice, not even by an operator restarted meanwhile.
            self._tell(body, events.pipeline_events(body.get("status"), new))

    def _tell(self, body: dict[str, Any], specs: list[events.EventSpec]) -> None:
        """Record a pipeline's events; a masking key failure is also told on the policies it references."""
        self.recorder.record_all(body, specs)
        name = body["metadata"]["name"]
        for spec in specs:
            if spec.reason not in events.MASKING_REASONS:
                continue
            for ref in body["spec"].get("maskingPolicyRefs", []):
                policy = kube.get(self.api, kube.POLICIES, body["metadata"]["namespace"], ref["name"])
                if policy is not None:
                    note = f"pipeline {name}: {spec.note}"
                    self.recorder.record(policy, events.EventSpec("Warning", spec.reason, note, spec.action, name))

    # -- masking policies --------------------------------------------------------------------------

    def _pipelines_using(self, namespace: str, policy: str) -> list[str]:
        return sorted(
            p["metadata"]["name"]
            for p in kube.list_objects(self.api, kube.PIPELINES, namespace)
            if any(ref.get("name") == policy for ref in p["spec"].get("maskingPolicyRefs", []))
        )

    async def policy_changed(self, namespace: str, name: str, *, deleted: bool = False) -> None:
        """Re-render every pipeline referencing the policy (its rules are embedded in their configs)."""
        users = await asyncio.to_thread(self._pipelines_using, namespace, name)
        for pipeline in users:
            await self.sync_pipeline(namespace, pipeline)
        if not deleted:
            await asyncio.to_thread(self._policy_status, namespace, name, users)

    def _policy_status(self, namespace: str, name: str, users: list[str]) -> None:
        body = kube.get(self.api, kube.POLICIES, namespace, name)
        if body is None:
            return
        generation = int(body["metadata"].get("generation", 1))
        rules = len(MaskingPolicySpec.model_validate(body["spec"]).rules)
        previous = (body.get("status") or {}).get("conditions") or []
        old = next((c for c in previous if c.get("type") == "Ready"), None)
        since = old["lastTransitionTime"] if old and old.get("status") == "True" else _now()
        new = {
            "observedGeneration": generation,
            "ruleCount": rules,
            "pipelineCount": len(users),
            "pipelines": users,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Accepted",
                    "message": f"used by {len(users)} pipeline(s)",
                    "lastTransitionTime": since,
                    "observedGeneration": generation,
                }
            ],
        }
        current = {k: v for k, v in (body.get("status") or {}).items() if k in new}
        if current != new:
            kube.patch_status(self.api, kube.POLICIES, namespace, name, new)
            metrics.STATUS_PATCHES.labels("MaskingPolicy").inc()
            self.recorder.record_all(body, events.policy_events(body.get("status"), new))

    # -- the periodic loop -------------------------------------------------------------------------

    def _all(self, kind: kube.Kind) -> list[dict[str, Any]]:
        scopes: list[str | None] = list(self.settings.namespaces) or [None]
        return [i for ns in scopes for i in kube.list_objects(self.api, kind, ns)]

    def _all_pipelines(self) -> list[tuple[str, str]]:
        return [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in self._all(kube.PIPELINES)]

    def _refresh_policies(self) -> None:
        """Keep every MaskingPolicy's list of users current (pipelines add and drop references too)."""
        users: dict[tuple[str, str], list[str]] = {}
        for p in self._all(kube.PIPELINES):
            for ref in p["spec"].get("maskingPolicyRefs", []):
                users.setdefault((p["metadata"]["namespace"], ref["name"]), []).append(p["metadata"]["name"])
        for policy in self._all(kube.POLICIES):
            key = (policy["metadata"]["namespace"], policy["metadata"]["name"])
            self._policy_status(*key, sorted(users.get(key, [])))

    async def loop(self, stop: asyncio.Event) -> None:
        """Every status interval: refresh each pipeline's status; every resync interval: reconcile it fully
        and refresh the MaskingPolicies' status."""
        last_policies = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() - last_policies >= self.settings.resync_seconds:
                    await asyncio.to_thread(self._refresh_policies)
                    last_policies = time.monotonic()
                pipelines = await asyncio.to_thread(self._all_pipelines)
                for namespace, name in pipelines:
                    memory = self._memory.get((namespace, name))
                    due = memory is None or time.monotonic() - memory.last_reconcile >= self.settings.resync_seconds
                    try:
                        await self.sync_pipeline(namespace, name, full=due)
                    except (ApiException, OSError) as exc:
                        log.warning("periodic sync of %s/%s failed: %s", namespace, name, exc)
                self._export_gauges()
            except (ApiException, OSError) as exc:
                log.warning("cannot list pipelines: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.status_seconds)

    def _export_gauges(self) -> None:
        phases = Counter(m.last_status.get("phase") for m in self._memory.values() if m.last_status)
        for phase in metrics.PHASES:
            metrics.PIPELINES.labels(phase).set(phases.get(phase, 0))
        conds = Counter(
            (c["type"], c["status"])
            for m in self._memory.values()
            if m.last_status
            for c in m.last_status["conditions"]
        )
        for type_ in ("Ready", "Progressing", "Degraded", "Paused"):
            for st in ("True", "False"):
                metrics.PIPELINE_CONDITIONS.labels(type_, st).set(conds.get((type_, st), 0))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
