"""The lab's Kubernetes API is real: CEL validation, and garbage collection by the controller-manager."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration

GROUP = "smoke.cdc.lab"


@pytest.fixture
def widget_crd(kube_api: Any) -> Any:
    ext = client.ApiextensionsV1Api(kube_api)
    plural = f"widgets{uuid.uuid4().hex[:6]}"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural[:-1], "kind": f"W{plural}"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "minReplicas": {"type": "integer"},
                                        "maxReplicas": {"type": "integer"},
                                    },
                                    "x-kubernetes-validations": [
                                        {
                                            "rule": "self.minReplicas <= self.maxReplicas",
                                            "message": "minReplicas must not exceed maxReplicas",
                                        }
                                    ],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    ext.create_custom_resource_definition(crd)

    def established() -> bool:
        got = ext.read_custom_resource_definition(crd["metadata"]["name"])
        return any(c.type == "Established" and c.status == "True" for c in (got.status.conditions or []))

    eventually(established, 30, "the CRD to be established")
    yield crd
    ext.delete_custom_resource_definition(crd["metadata"]["name"])


def test_cel_rule_rejects_an_invalid_object(kube_api: Any, kube_namespace: str, widget_crd: Any) -> None:
    custom = client.CustomObjectsApi(kube_api)
    names = widget_crd["spec"]["names"]

    def body(name: str, lo: int, hi: int) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/v1",
            "kind": names["kind"],
            "metadata": {"name": name},
            "spec": {"minReplicas": lo, "maxReplicas": hi},
        }

    custom.create_namespaced_custom_object(GROUP, "v1", kube_namespace, names["plural"], body("ok", 1, 3))
    with pytest.raises(ApiException) as rejected:
        custom.create_namespaced_custom_object(GROUP, "v1", kube_namespace, names["plural"], body("bad", 5, 2))
    assert rejected.value.status == 422
    assert "minReplicas must not exceed maxReplicas" in rejected.value.body


def test_controller_manager_rolls_out_and_garbage_collects_owned_deployments(
    kube_api: Any, kube_namespace: str
) -> None:
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    owner = core.create_namespaced_config_map(
        kube_namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"), data={"role": "pretend pipeline"}),
    )
    labels = {"app": "owned"}
    apps.create_namespaced_deployment(
        kube_namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(
                name="owned",
                owner_references=[
                    client.V1OwnerReference(
                        api_version="v1",
                        kind="ConfigMap",
                        name="owner",
                        uid=owner.metadata.uid,
                        block_owner_deletion=True,
                    )
                ],
            ),
            spec=client.V1DeploymentSpec(
                replicas=1,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="busybox")]),
                ),
            ),
        ),
    )
    # The Deployment controller makes a ReplicaSet, the ReplicaSet controller a Pod (left Pending: no kubelet).
    eventually(
        lambda: bool(core.list_namespaced_pod(kube_namespace, label_selector="app=owned").items),
        60,
        "the controller-manager to create the Deployment's Pod",
    )

    core.delete_namespaced_config_map("owner", kube_namespace)

    def collected() -> bool:
        try:
            apps.read_namespaced_deployment("owned", kube_namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    eventually(collected, 60, "the garbage collector to delete the owned Deployment")
    eventually(
        lambda: not apps.list_namespaced_replica_set(kube_namespace).items,
        60,
        "the garbage collector to delete the Deployment's ReplicaSet",
    )
