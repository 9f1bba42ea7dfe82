"""Our CRDs in the real API server: examples accepted, defaults applied, CEL rules reject with their message."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from cdc_operator.api.base import GROUP, VERSION
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _example(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((EXAMPLES / name).read_text()))


def _create(kube_api: Any, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    plural = {"CdcPipeline": "cdcpipelines", "MaskingPolicy": "maskingpolicies"}[body["kind"]]
    custom = client.CustomObjectsApi(kube_api)
    return dict(custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body))


def _rejected(kube_api: Any, namespace: str, body: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as rejected:
        _create(kube_api, namespace, body)
    assert rejected.value.status == 422, rejected.value.body
    return str(rejected.value.body)


def test_examples_are_accepted_and_defaulted(kube_api: Any, kube_namespace: str, cdc_crds: None) -> None:
    policy = _create(kube_api, kube_namespace, _example("masking-policy.yaml"))
    assert policy["spec"]["rules"][1]["match"]["table"] == "*"  # given; defaults fill the rest
    assert policy["spec"]["rules"][2]["match"]["keyspace"] == "clinic"
    pipeline = _create(kube_api, kube_namespace, _example("pipeline-three-nodes.yaml"))
    assert pipeline["spec"]["paused"] is False
    assert pipeline["spec"]["source"]["port"] == 9042
    assert pipeline["spec"]["maskingKeys"][0]["mount"] == "secret"  # a default of the masking module's model
    _create(kube_api, kube_namespace, _example("pipeline-k8ssandra.yaml"))


# One test over all cases: the shared kube_namespace fixture names namespaces after the test,
# and parametrized ids ("[...]") are not valid namespace names.
INVALID_PIPELINES: list[tuple[str, Any, str]] = [
    (
        "two-credential-sources",
        lambda s: s["destinations"][0]["credentials"].update(secretRef={"name": "x"}),
        "exactly one of secretRef or vault must be set",
    ),
    (
        "nodes-and-selector",
        lambda s: s["source"].update(podSelector={"matchLabels": {"app": "cassandra"}}),
        "exactly one of nodes or podSelector must be set",
    ),
    (
        "time-column-on-postgres",
        lambda s: s["destinations"][0].update(tables=[{"table": "shop.orders", "timeColumn": "ts"}]),
        "timeColumn is only valid for timescaledb destinations",
    ),
    (
        "nothing-selected",
        lambda s: s["source"].update(keyspaces=[], tables=[]),
        "select at least one keyspace or table",
    ),
    (
        "no-cdc-raw",
        lambda s: s["source"].pop("cdcRaw"),
        "cdcRaw must be set, here or on every node",
    ),
]


def test_cel_rules_reject_invalid_pipelines(kube_api: Any, kube_namespace: str, cdc_crds: None) -> None:
    for case, mutate, message in INVALID_PIPELINES:
        body = copy.deepcopy(_example("pipeline-three-nodes.yaml"))
        body["metadata"]["name"] = case
        mutate(body["spec"])
        assert message in _rejected(kube_api, kube_namespace, body), case


def test_duplicate_destination_names_are_rejected(kube_api: Any, kube_namespace: str, cdc_crds: None) -> None:
    body = _example("pipeline-three-nodes.yaml")
    body["spec"]["destinations"][1]["name"] = body["spec"]["destinations"][0]["name"]
    assert "Duplicate value" in _rejected(kube_api, kube_namespace, body)


def test_partial_masking_needs_keep_last(kube_api: Any, kube_namespace: str, cdc_crds: None) -> None:
    body = _example("masking-policy.yaml")
    del body["spec"]["rules"][1]["keepLast"]
    assert "action partial requires keepLast" in _rejected(kube_api, kube_namespace, body)
    body = _example("masking-policy.yaml")
    del body["spec"]["rules"][0]["keyRef"]
    assert "action hmac requires keyRef" in _rejected(kube_api, kube_namespace, body)
