"""Node registration and heartbeat: what makes the lab's node-lifecycle controller trust us.

The controller-manager marks a node Unknown (and taints it, and later evicts its pods) when
neither its Lease in kube-node-lease nor its Ready condition is renewed within the grace
period (~40-50 s). We renew both every ``heartbeat_seconds``.
"""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from e2e.podrunner.kube import MERGE_PATCH, is_not_found, now_micro, now_rfc3339

LEASE_NAMESPACE = "kube-node-lease"
LEASE_SECONDS = 40
# Strategic merge keys conditions by type: a heartbeat updates ours and keeps the rest.
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


def node_labels(name: str) -> dict[str, str]:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "cdc.lab/podrunner": "true",
    }


def _status(name: str) -> dict[str, Any]:
    now = now_rfc3339()
    return {
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "e2e pod runner is posting ready status",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            },
            *(
                {
                    "type": t,
                    "status": "False",
                    "reason": f"KubeletHas{r}",
                    "message": "",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
                for t, r in (
                    ("MemoryPressure", "SufficientMemory"),
                    ("DiskPressure", "NoDiskPressure"),
                    ("PIDPressure", "SufficientPID"),
                )
            ),
        ],
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
        "capacity": {"cpu": "2", "memory": "24Gi", "pods": "110"},
        "allocatable": {"cpu": "2", "memory": "24Gi", "pods": "110"},
        "nodeInfo": {
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
            "kernelVersion": platform.release(),
            "osImage": "e2e pod runner",
            "containerRuntimeVersion": "podrunner://0",
            "kubeletVersion": "v0.0.0-podrunner",
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": node_labels(name)["kubernetes.io/arch"],
        },
    }


class NodeAgent:
    def __init__(self, api: client.ApiClient, name: str) -> None:
        self.name = name
        self.core = client.CoreV1Api(api)
        self.coordination = client.CoordinationV1Api(api)

    def register(self) -> None:
        """Create the Node (or take over one left by an earlier runner) and post it Ready."""
        labels = node_labels(self.name)
        try:
            self.core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=self.name, labels=labels)))
        except client.ApiException as exc:
            if exc.status != 409:
                raise
            self.core.patch_node(self.name, {"metadata": {"labels": labels}}, _content_type=MERGE_PATCH)
        self.heartbeat(full=True)

    def heartbeat(self, full: bool = False) -> None:
        status = _status(self.name)
        if not full:
            # lastTransitionTime only moves when the condition changes: keep the node's own.
            for c in status["conditions"]:
                c.pop("lastTransitionTime")
        self.core.patch_node_status(self.name, {"status": status}, _content_type=STRATEGIC_PATCH)
        self._renew_lease()

    def _renew_lease(self) -> None:
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": now_micro()}
        try:
            self.coordination.patch_namespaced_lease(
                self.name, LEASE_NAMESPACE, {"spec": spec}, _content_type=MERGE_PATCH
            )
        except client.ApiException as exc:
            if not is_not_found(exc):
                raise
            node = self.core.read_node(self.name)
            assert node.metadata is not None
            owner = client.V1OwnerReference(api_version="v1", kind="Node", name=self.name, uid=str(node.metadata.uid))
            lease = client.V1Lease(
                metadata=client.V1ObjectMeta(name=self.name, namespace=LEASE_NAMESPACE, owner_references=[owner]),
                spec=client.V1LeaseSpec(
                    holder_identity=self.name, lease_duration_seconds=LEASE_SECONDS, renew_time=datetime.now(UTC)
                ),
            )
            self.coordination.create_namespaced_lease(LEASE_NAMESPACE, lease)
