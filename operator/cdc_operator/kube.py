"""The few Kubernetes API calls the operator makes, over the official client.

Writes are server-side apply with one field manager, so applying the same manifest twice is a
no-op, fields other managers own (``kubectl rollout restart``'s annotation, the sidecar's
checkpoint data, the Deployment controller's status) are left alone, and no read-modify-write
races exist.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from cdc_operator.api.base import GROUP, VERSION

FIELD_MANAGER = "cdc-operator"


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str

    def collection(self, namespace: str | None) -> str:
        """The collection's path; in every namespace when ``namespace`` is None."""
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        return f"{prefix}/{self.plural}" if namespace is None else f"{prefix}/namespaces/{namespace}/{self.plural}"


# Everything the operator owns, in deletion-safe order (workloads first).
OWNED_KINDS = (
    Kind("apps/v1", "Deployment", "deployments"),
    Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    Kind("rbac.authorization.k8s.io/v1", "Role", "roles"),
    Kind("v1", "ServiceAccount", "serviceaccounts"),
    Kind("v1", "ConfigMap", "configmaps"),
    Kind("v1", "Secret", "secrets"),
)
_BY_KIND = {k.kind: k for k in OWNED_KINDS}

PODS = Kind("v1", "Pod", "pods")
PIPELINES = Kind(f"{GROUP}/{VERSION}", "CdcPipeline", "cdcpipelines")
POLICIES = Kind(f"{GROUP}/{VERSION}", "MaskingPolicy", "maskingpolicies")


def api_client() -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        return client.ApiClient()
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=os.environ.get("KUBECONFIG")
    )
    return api


def _call(api: client.ApiClient, method: str, path: str, **kwargs: Any) -> Any:
    """One request through the client's own serialization and authentication; JSON in, JSON out."""
    headers = kwargs.pop("header_params", None) or {"Accept": "application/json"}
    _method, url, header_params, body, post_params = api.param_serialize(
        method, path, header_params=headers, auth_settings=["BearerToken"], **kwargs
    )
    response = api.call_api(_method, url, header_params=header_params, body=body, post_params=post_params)
    response.read()  # type: ignore[no-untyped-call]
    if not 200 <= response.status < 300:
        raise ApiException.from_response(http_resp=response, body=(response.data or b"").decode(), data=None)
    return json.loads(response.data) if response.data else None


def apply(api: client.ApiClient, manifest: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply one namespaced manifest (create or update)."""
    kind = _BY_KIND[manifest["kind"]]
    meta = manifest["metadata"]
    path = f"{kind.collection(meta['namespace'])}/{meta['name']}"
    result: dict[str, Any] = _call(
        api,
        "PATCH",
        path,
        query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
        body=manifest,
    )
    return result


def list_objects(
    api: client.ApiClient, kind: Kind, namespace: str | None, label_selector: str = ""
) -> list[dict[str, Any]]:
    query = [("labelSelector", label_selector)] if label_selector else []
    data = _call(api, "GET", kind.collection(namespace), query_params=query)
    return list(data.get("items", []))


def get(api: client.ApiClient, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
    """The object, or None when it does not exist."""
    try:
        data: dict[str, Any] = _call(api, "GET", f"{kind.collection(namespace)}/{name}")
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return data


def delete(api: client.ApiClient, kind: Kind, namespace: str, name: str) -> None:
    try:
        _call(api, "DELETE", f"{kind.collection(namespace)}/{name}", body={"propagationPolicy": "Background"})
    except ApiException as exc:
        if exc.status != 404:
            raise


def patch_status(api: client.ApiClient, kind: Kind, namespace: str, name: str, status: dict[str, Any]) -> None:
    """Replace our status fields (a merge patch: lists such as conditions are replaced whole, which is
    what we want since the operator computes all of them)."""
    _call(
        api,
        "PATCH",
        f"{kind.collection(namespace)}/{name}/status",
        header_params={"Content-Type": "application/merge-patch+json", "Accept": "application/json"},
        body={"status": status},
    )


def read_secret(api: client.ApiClient, namespace: str, name: str) -> dict[str, str] | None:
    """A Secret's data, base64-decoded; None when the Secret does not exist."""
    try:
        secret = client.CoreV1Api(api).read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


EVENTS = "/apis/events.k8s.io/v1"


def create_event(api: client.ApiClient, event: dict[str, Any]) -> None:
    """Create one events.k8s.io/v1 Event (see ``cdc_operator.events``)."""
    _call(api, "POST", f"{EVENTS}/namespaces/{event['metadata']['namespace']}/events", body=event)


def patch_event(api: client.ApiClient, namespace: str, name: str, patch: dict[str, Any]) -> None:
    """Merge-patch an Event (its ``series``)."""
    _call(
        api,
        "PATCH",
        f"{EVENTS}/namespaces/{namespace}/events/{name}",
        header_params={"Content-Type": "application/merge-patch+json", "Accept": "application/json"},
        body=patch,
    )
