"""Kubernetes Events on CdcPipelines and MaskingPolicies: the history ``kubectl describe`` shows.

*What* to say is decided from transitions (:func:`pipeline_events`, :func:`policy_events`, pure):
the status the operator just computed against the status stored on the object. A resync that
finds nothing changed says nothing, and neither does an operator restarted over an unchanged
cluster, since the stored status survives it.

*How* it is said (:class:`EventRecorder`): events.k8s.io/v1 Events written by the operator itself,
with the series semantics of client-go's ``tools/events`` recorder (``eventBroadcasterImpl``):
events that agree on object, action, reason and type (and :attr:`EventSpec.series`) are
*isomorphic*; a repeat within :data:`SERIES_WINDOW` of the last one joins the first event's
``series`` (count and lastObservedTime, patched at most every :data:`SERIES_PATCH_INTERVAL`)
instead of creating another object, so a flapping condition or a retry loop adds one Event with
a growing count, never a flood. kopf's ``kopf.event`` is not used: it posts core/v1 Events
fire-and-forget from kopf's own queue (only inside kopf's context), one new object per call with
no way to merge repeats, and its reporting component is kopf's, not ours.

Recording never raises: an Event that cannot be written (the API down, RBAC) is logged and
dropped, and must never fail the reconcile it describes.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from cdc_operator import kube
from cdc_operator.api.base import GROUP

log = logging.getLogger(__name__)

REPORTING_CONTROLLER = f"{GROUP}/operator"
SERIES_WINDOW = 360.0
"""Seconds after its last occurrence during which a repeat joins an event's series (client-go: 6 min)."""
SERIES_PATCH_INTERVAL = 60.0
"""A series' count is written at its first repeat, then at most this often."""
MAX_NOTE = 1024  # the API server's limit on events.k8s.io/v1 Event.note

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class EventSpec:
    """One thing to tell about an object. ``series`` separates events that are otherwise isomorphic
    (the snapshot of node1 and that of node2)."""

    type: EventType
    reason: str
    note: str
    action: str
    series: str = ""


# -- what to say: transitions -------------------------------------------------------------------

# Ready=False reasons that are the user's to fix (a missing reference, nothing to run on). The others
# (ReplicatorsNotReady, Paused) are states on the way, told by other events.
_NOT_READY_WARNINGS = frozenset(
    {
        "InvalidSpec",
        "MaskingPolicyNotFound",
        "MaskingKeyNotConfigured",
        "MaskingKeyInvalid",
        "SecretNotFound",
        "SecretKeyNotFound",
        "VaultNotConfigured",
        "VaultPathNotFound",
        "VaultKeyNotFound",
        "NoNodesFound",
    }
)
MASKING_REASONS = frozenset({"MaskingKeyNotConfigured", "MaskingKeyInvalid"})
"""Pipeline failures that a MaskingPolicy's users also need to see on the policy."""


def _conditions(status: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (status or {}).get("conditions") or [] if "type" in c}


def _is(cond: dict[str, Any] | None, status: str) -> bool:
    return cond is not None and cond.get("status") == status


def _changed(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    return old is None or any(old.get(k) != new.get(k) for k in ("status", "reason", "message"))


def pipeline_events(old: dict[str, Any] | None, new: dict[str, Any]) -> list[EventSpec]:
    """The events a CdcPipeline's status change deserves, from its stored status ``old`` (None when it
    has none yet) to the freshly computed ``new``."""
    before, after = _conditions(old), _conditions(new)
    out: list[EventSpec] = []
    ready = after.get("Ready")
    warn = ready is not None and ready.get("status") == "False" and ready.get("reason") in _NOT_READY_WARNINGS
    if warn and ready is not None and _changed(before.get("Ready"), ready):
        out.append(EventSpec("Warning", ready["reason"], ready.get("message", ""), "Reconcile"))
    new_hash, old_hash = new.get("configHash"), (old or {}).get("configHash")
    applied = bool(new_hash) and new_hash != old_hash
    if applied:
        replicators = new.get("desiredReplicators", 0)
        out.append(
            EventSpec("Normal", "Reconciled", f"config {new_hash} applied for {replicators} replicator(s)", "Reconcile")
        )
    progressing, was_progressing = after.get("Progressing"), before.get("Progressing")
    if _is(progressing, "True") and not _is(was_progressing, "True"):
        out.append(EventSpec("Normal", "RollingOut", f"rolling out config {new_hash or '?'}", "Rollout"))
    # Done: the rollout seen in progress has ended, or a new config was rolled out before the status could
    # show it in progress (the Deployment controller is quick when only the pod template changes).
    done = _is(progressing, "False") and (_is(was_progressing, "True") or applied)
    if done and not _is(after.get("Paused"), "True"):
        note = f"config {new_hash or '?'} rolled out: {new.get('replicators', '?')} replicators ready"
        out.append(EventSpec("Normal", "RolledOut", note, "Rollout"))
    paused, was_paused = after.get("Paused"), before.get("Paused")
    if _is(paused, "True") and not _is(was_paused, "True"):
        out.append(EventSpec("Normal", "Paused", "spec.paused is true: replicators scaled to zero", "Pause"))
    if _is(was_paused, "True") and _is(paused, "False"):
        note = "spec.paused is false: replicators resume from their offsets"
        out.append(EventSpec("Normal", "Resumed", note, "Pause"))
    degraded, was_degraded = after.get("Degraded"), before.get("Degraded")
    if degraded is not None and _is(degraded, "True") and _changed(was_degraded, degraded):
        out.append(EventSpec("Warning", degraded["reason"], f"Degraded: {degraded.get('message', '')}", "Observe"))
    if _is(was_degraded, "True") and _is(degraded, "False"):
        assert was_degraded is not None
        out.append(EventSpec("Normal", "Recovered", f"no longer Degraded ({was_degraded.get('reason')})", "Observe"))
    return out


def policy_events(old: dict[str, Any] | None, new: dict[str, Any]) -> list[EventSpec]:
    """The events a MaskingPolicy's status change deserves."""
    out: list[EventSpec] = []
    generation = new.get("observedGeneration")
    if generation is not None and generation != (old or {}).get("observedGeneration"):
        note = f"generation {generation}: {new.get('ruleCount', 0)} rule(s)"
        out.append(EventSpec("Normal", "Accepted", note, "Reconcile"))
    users, old_users = new.get("pipelines") or [], (old or {}).get("pipelines") or []
    if old is not None and sorted(users) != sorted(old_users):
        note = f"used by {len(users)} pipeline(s): {', '.join(users) or 'none'}"
        out.append(EventSpec("Normal", "UsersChanged", note, "Reconcile"))
    return out


# -- how to say it: events.k8s.io/v1 with series ------------------------------------------------


@dataclass
class _Series:
    name: str
    namespace: str
    count: int
    last_observed: float  # monotonic
    last_observed_wall: datetime
    last_patch: float = 0.0
    written_count: int = 1


def _micro(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _instance() -> str:
    """The reporting instance: the operator's pod (its hostname), as kube-scheduler reports itself."""
    return os.environ.get("POD_NAME") or socket.gethostname()


@dataclass
class EventRecorder:
    """Writes events.k8s.io/v1 Events about CdcPipelines and MaskingPolicies; thread-safe."""

    api: client.ApiClient
    instance: str = field(default_factory=_instance)
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _series: dict[tuple[str, ...], _Series] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, obj: dict[str, Any], spec: EventSpec) -> None:
        """Tell ``spec`` about ``obj`` (a CdcPipeline or MaskingPolicy body): a new Event, or one more
        occurrence in the series of an isomorphic one. Never raises."""
        meta = obj.get("metadata") or {}
        key = (meta.get("uid", ""), spec.action, spec.reason, spec.type, spec.series)
        now, wall = self.clock(), self.wall()
        try:
            with self._lock:
                self._expire(now)
                series = self._series.get(key)
                if series is None:
                    name = self._create(obj, spec, wall)
                    self._series[key] = _Series(name, meta["namespace"], 1, now, wall)
                    return
                series.count += 1
                series.last_observed, series.last_observed_wall = now, wall
                if series.written_count == 1 or now - series.last_patch >= SERIES_PATCH_INTERVAL:
                    try:
                        self._patch_series(series)
                    except ApiException as exc:
                        if exc.status != 404:
                            raise
                        # The API server's event TTL (1 h by default) removed it: tell it anew.
                        self._series[key] = _Series(self._create(obj, spec, wall), meta["namespace"], 1, now, wall)
                        return
                    series.last_patch, series.written_count = now, series.count
        except (ApiException, OSError) as exc:
            log.warning(
                "cannot record event %s on %s %s/%s: %s",
                spec.reason,
                obj.get("kind"),
                meta.get("namespace"),
                meta.get("name"),
                getattr(exc, "reason", exc),
            )

    def record_all(self, obj: dict[str, Any], specs: list[EventSpec]) -> None:
        for spec in specs:
            self.record(obj, spec)

    def forget(self, uid: str) -> None:
        """Drop what is remembered of an object that is gone."""
        with self._lock:
            for key in [k for k in self._series if k[0] == uid]:
                del self._series[key]

    # Called by the snapshot (issue 17): once when a node's initial snapshot starts, once when it ends.
    def snapshot_started(self, pipeline: dict[str, Any], node: str, detail: str) -> None:
        """A Normal ``SnapshotStarted`` event on ``pipeline`` for ``node`` (``detail``: e.g. the tables)."""
        self.record(pipeline, EventSpec("Normal", "SnapshotStarted", f"{node}: {detail}", "Snapshot", series=node))

    def snapshot_finished(self, pipeline: dict[str, Any], node: str, detail: str) -> None:
        """A Normal ``SnapshotFinished`` event on ``pipeline`` for ``node`` (``detail``: e.g. rows and ranges)."""
        self.record(pipeline, EventSpec("Normal", "SnapshotFinished", f"{node}: {detail}", "Snapshot", series=node))

    # -- internals ---------------------------------------------------------------------------------

    def _expire(self, now: float) -> None:
        """A series ends when nothing joined it for SERIES_WINDOW; the next occurrence starts a new Event."""
        for key in [k for k, s in self._series.items() if now - s.last_observed > SERIES_WINDOW]:
            series = self._series.pop(key)
            if series.count > series.written_count:  # its last occurrences were not written yet
                try:
                    self._patch_series(series)
                except (ApiException, OSError) as exc:
                    log.debug("final count of event %s not written: %s", series.name, exc)

    def _create(self, obj: dict[str, Any], spec: EventSpec, wall: datetime) -> str:
        meta = obj["metadata"]
        # client-go names events <object>.<unix nanoseconds in hex>: unique, and sorted by time.
        name = f"{meta['name']}.{int(wall.timestamp() * 1e9):x}"
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": meta["namespace"]},
            "eventTime": _micro(wall),
            "reportingController": REPORTING_CONTROLLER,
            "reportingInstance": self.instance[:128],
            "action": spec.action,
            "reason": spec.reason,
            "type": spec.type,
            "note": spec.note[:MAX_NOTE],
            "regarding": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
        }
        kube.create_event(self.api, body)
        return name

    def _patch_series(self, series: _Series) -> None:
        patch = {"series": {"count": series.count, "lastObservedTime": _micro(series.last_observed_wall)}}
        kube.patch_event(self.api, series.namespace, series.name, patch)
