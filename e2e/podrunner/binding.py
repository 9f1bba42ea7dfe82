"""Playing the scheduler: take unscheduled pods that may run on our node and bind them to it.

Placement is honoured only as far as "is it our node": nodeSelector and required node
affinity are evaluated against our node's labels (and name, for matchFields); preferred
affinity, taints/tolerations, resources and pod (anti-)affinity are ignored.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from e2e.podrunner.kube import Obj

DEFAULT_SCHEDULER = "default-scheduler"


def _requirement_holds(req: dict[str, Any], value: str | None) -> bool:  # noqa: PLR0911 - one per operator
    op, values = req.get("operator"), req.get("values") or []
    if op == "In":
        return value in values
    if op == "NotIn":
        return value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and values:
        try:
            return int(value) > int(values[0]) if op == "Gt" else int(value) < int(values[0])
        except ValueError:
            return False
    return False


def _term_matches(term: dict[str, Any], node_name: str, labels: dict[str, str]) -> bool:
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False  # an empty term matches nothing (as in the scheduler)
    return all(_requirement_holds(e, labels.get(e["key"])) for e in exprs) and all(
        _requirement_holds(f, node_name if f["key"] == "metadata.name" else None) for f in fields
    )


def fits(pod: Obj, node_name: str, labels: dict[str, str]) -> bool:
    """Could the scheduler put this pod on our node, judged by its placement rules alone?"""
    spec = pod.get("spec", {})
    if spec.get("schedulerName", DEFAULT_SCHEDULER) != DEFAULT_SCHEDULER:
        return False
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms")
    return not terms or any(_term_matches(t, node_name, labels) for t in terms)


def bind(core: client.CoreV1Api, pod: Obj, node_name: str) -> None:
    """POST pods/binding, as the scheduler does: the API server sets spec.nodeName and PodScheduled."""
    meta = pod["metadata"]
    body = client.V1Binding(
        metadata=client.V1ObjectMeta(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"]),
        target=client.V1ObjectReference(api_version="v1", kind="Node", name=node_name),
    )
    # The response is a Status, which the client would fail to read as a Binding.
    resp: Any = core.create_namespaced_pod_binding(meta["name"], meta["namespace"], body, _preload_content=False)
    resp.release_conn()
