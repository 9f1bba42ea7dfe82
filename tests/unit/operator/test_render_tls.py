"""A pipeline's TLS settings reach the replicator's config: CA and client pair from the mounted
Secret, and the minimum protocol version (1.2 unless the pipeline asks for 1.3)."""

from __future__ import annotations

import copy

import pytest
from cdc_operator.render.manifests import render_pipeline
from cdc_replicator.contract import config as rc

from tests.unit.operator.conftest import example, make_inputs

pytestmark = pytest.mark.unit


def _rendered(spec: dict[str, object]) -> rc.ReplicatorConfig:
    manifests = render_pipeline(make_inputs(spec, pods=[("demo-dc1-r1-sts-0", "worker-a")]))
    return rc.parse(next(m for m in manifests if m["kind"] == "ConfigMap")["data"]["replicator.yaml"])


def test_min_version_defaults_to_1_2() -> None:
    cfg = _rendered(example("pipeline-k8ssandra.yaml")["spec"])
    assert cfg.destinations[0].tls is not None
    assert cfg.destinations[0].tls.min_version == "1.2"


def test_min_version_and_client_certificate_reach_the_replicator() -> None:
    spec = copy.deepcopy(example("pipeline-k8ssandra.yaml")["spec"])
    spec["destinations"][0]["tls"] = {"secretName": "clickhouse-ca", "minVersion": "1.3"}
    spec["source"]["tls"] = {"secretName": "cassandra-client", "clientCertificate": True, "minVersion": "1.3"}
    cfg = _rendered(spec)
    destination, source = cfg.destinations[0].tls, cfg.source.tls
    assert destination is not None
    assert source is not None
    assert destination.min_version == "1.3"
    assert source.min_version == "1.3"
    assert source.ca_file == "/etc/cdc/tls/cassandra-client/ca.crt"
    assert source.cert_file == "/etc/cdc/tls/cassandra-client/tls.crt"
    assert source.key_file == "/etc/cdc/tls/cassandra-client/tls.key"


def test_insecure_skip_verify_keeps_the_min_version() -> None:
    spec = copy.deepcopy(example("pipeline-k8ssandra.yaml")["spec"])
    spec["destinations"][0]["tls"] = {"insecureSkipVerify": True, "minVersion": "1.3"}
    tls = _rendered(spec).destinations[0].tls
    assert tls is not None
    assert tls.insecure_skip_verify
    assert tls.min_version == "1.3"
