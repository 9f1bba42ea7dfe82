"""spec.source.cdcTotalSpace in the real API server: a positive quantity, refused otherwise by its CEL rule."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from cdc_operator.api.base import GROUP, VERSION
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.integration.operator.conftest import example

pytestmark = pytest.mark.integration


def test_cdc_total_space_takes_positive_quantities_only(kube_api: Any, kube_namespace: str, cdc_crds: None) -> None:
    custom = client.CustomObjectsApi(kube_api)
    base = example("pipeline-three-nodes.yaml", "cdc")
    for n, value in enumerate(["4Gi", "2048Mi", 4294967296]):
        body = copy.deepcopy(base)
        body["metadata"]["name"] = f"ok-{n}"
        body["spec"]["source"]["cdcTotalSpace"] = value
        custom.create_namespaced_custom_object(GROUP, VERSION, kube_namespace, "cdcpipelines", body)
    for value in ["lots", "-1Gi", 0, "0"]:
        body = copy.deepcopy(base)
        body["spec"]["source"]["cdcTotalSpace"] = value
        with pytest.raises(ApiException) as refused:
            custom.create_namespaced_custom_object(GROUP, VERSION, kube_namespace, "cdcpipelines", body)
        assert refused.value.status == 422
        assert "cdcTotalSpace must be a positive quantity such as 4Gi" in str(refused.value.body), value
