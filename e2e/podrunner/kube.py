"""Small helpers over the typed kubernetes client: plain dicts in, plain dicts out.

The runner reasons about pods as the JSON the API server sends (camelCase dicts), which is
what the manifests in tests and in the operator's renderer look like too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubernetes import client

MERGE_PATCH = "application/merge-patch+json"

Obj = dict[str, Any]


def to_dict(api: client.ApiClient, obj: Any) -> Obj:
    out = api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    assert isinstance(out, dict)
    return out


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_not_found(exc: Exception) -> bool:
    return isinstance(exc, client.ApiException) and exc.status == 404


def pod_key(pod: Obj) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
