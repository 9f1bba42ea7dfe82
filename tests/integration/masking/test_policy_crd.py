"""The policy model's CRD schema, served by the lab's real API server: accepted, and its CEL rules bite."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cdc_replicator.contract.policy import MaskingPolicySpec, crd_schema
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.integration
GROUP = "masking-test.cdc.lab"


@pytest.fixture
def policy_crd(kube_api: Any) -> Iterator[dict[str, str]]:
    ext = client.ApiextensionsV1Api(kube_api)
    plural = f"maskingpolicies{uuid.uuid4().hex[:6]}"
    kind = f"MaskingPolicy{plural[-6:].upper()}"
    name = f"{plural}.{GROUP}"
    body: Any = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural[:-3] + "y", "kind": kind},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": crd_schema()},
                        }
                    },
                }
            ],
        },
    }
    ext.create_custom_resource_definition(body)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = ext.read_custom_resource_definition(name).status
        conditions = (status.conditions if status is not None else None) or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"CRD {name} never became established")
    yield {"plural": plural, "kind": kind}
    ext.delete_custom_resource_definition(name)


def test_the_api_server_serves_the_policy_schema_and_enforces_its_rules(
    kube_api: Any, kube_namespace: str, policy_crd: dict[str, str]
) -> None:
    custom = client.CustomObjectsApi(kube_api)

    def create(name: str, spec: dict[str, Any]) -> Any:
        body = {
            "apiVersion": f"{GROUP}/v1",
            "kind": policy_crd["kind"],
            "metadata": {"name": name},
            "spec": spec,
        }
        # Strict, as kubectl is by default: unknown fields are errors, not silently pruned.
        return custom.create_namespaced_custom_object(
            GROUP, "v1", kube_namespace, policy_crd["plural"], body, field_validation="Strict"
        )

    rules: list[dict[str, Any]] = [
        {
            "name": "email",
            "classification": "PII",
            "match": {"keyspace": "shop", "table": "customers", "column": "email"},
            "action": "hmac",
            "keyRef": "customer-tokens",
        },
        {
            "name": "phone",
            "classification": "PII",
            "match": {"columnRegex": "phone_.*", "path": ["value"]},
            "action": "partial",
            "keepLast": 4,
        },
    ]
    spec = {"rules": rules}
    stored = create("good", spec)
    # What the API server stored (with its defaults) loads back into the model unchanged.
    loaded = MaskingPolicySpec.model_validate(stored["spec"])
    assert loaded == MaskingPolicySpec.model_validate(spec)
    assert stored["spec"]["rules"][0]["match"]["keyspace"] == "shop"

    invalid = [
        ({**rules[0], "keyRef": None}, "action hmac requires keyRef"),
        ({**rules[1], "keepLast": None, "marker": "x"}, "action partial requires keepLast"),
        (
            {**rules[0], "match": {"column": "a", "columnRegex": "b"}},
            "set exactly one of column and columnRegex",
        ),
        ({**rules[0], "action": "shred"}, "Unsupported value"),
        ({**rules[0], "colour": "red"}, "unknown field"),
    ]
    for i, (bad_rule, message) in enumerate(invalid):
        bad = {k: v for k, v in bad_rule.items() if v is not None}
        with pytest.raises(ApiException) as rejected:
            create(f"bad-{i}", {"rules": [bad]})
        assert rejected.value.status in (400, 422)
        assert message in str(rejected.value.body), rejected.value.body
    with pytest.raises(ApiException) as duplicate:
        create("dup", {"rules": [rules[0], rules[0]]})
    assert "Duplicate value" in str(duplicate.value.body)
