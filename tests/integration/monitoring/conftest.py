"""Fixtures of the monitoring tests: Prometheus's tooling from the lab, the chart as helm renders it with
every monitoring object on, and the metric names a real replicator and a real operator export."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from e2e.lab import prometheus
from e2e.lab.errors import LabError
from e2e.lab.layout import Layout
from e2e.lab.ports import free_port
from tests.integration.commitlog.helpers import run, unique_keyspace
from tests.integration.masking import harness
from tests.integration.operator.conftest import CDC_OPERATOR, CHART, install_crds
from tests.integration.replicator.conftest import _drop_schema
from tests.integration.replicator.process import Replicator, wait_until, write_config
from tests.integration.waiting import eventually

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
MONITORING_VALUES = [
    "--set", "monitoring.rules.enabled=true",
    "--set", "monitoring.replicators.podMonitor.enabled=true",
    "--set", "monitoring.operator.podMonitor.enabled=true",
    "--set", "metrics.serviceMonitor.enabled=true",
    "--set", "monitoring.dashboard.enabled=true",
]  # fmt: skip

# Exported by the initial snapshot (issue 17) once it exists; the CdcSnapshotStalled alert is written
# against these names ahead of it. Remove from here when a running replicator exports them.
PENDING_SNAPSHOT_METRICS = frozenset(
    {
        "cdc_snapshot_ranges_done",
        "cdc_snapshot_ranges_total",
        "cdc_snapshot_rows_total",
        "cdc_snapshot_last_progress_timestamp_seconds",
    }
)


@pytest.fixture(scope="session")
def prometheus_tools(lab_layout: Layout, lab: dict[str, Any]) -> dict[str, Any]:
    """promtool, promql-check and the Prometheus operator's CRDs (built once, cached by version)."""
    try:
        prometheus.install(lab_layout)  # `up` did it already unless the lab predates it; cached either way
        return dict(prometheus.describe(lab_layout)["prometheus"])
    except LabError as exc:
        pytest.fail(exc.describe(), pytrace=False)


def helm_template(lab: dict[str, Any], *values: str, namespace: str = "cdc-system") -> list[dict[str, Any]]:
    """The chart's objects as ``helm template`` renders them (what ships), with these values."""
    out = subprocess.run(
        [lab["kubernetes"]["helm"], "template", "cdc", str(CHART), "-n", namespace, "--kube-version", "1.36.0",
         *values],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="session")
def rendered(lab: dict[str, Any]) -> list[dict[str, Any]]:
    return helm_template(lab, *MONITORING_VALUES)


def only(docs: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind} named *{name_suffix}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def promql_check(tools: dict[str, Any], exprs: list[str]) -> list[dict[str, Any]]:
    """Prometheus's own PromQL parser over each expression: its error (or "") and the metrics it selects."""
    out = subprocess.run(
        [tools["promql_check"]], input=json.dumps(exprs), check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return list(json.loads(out))


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "gauge": ("",),
    "unknown": ("",),
}


def exported_names(exposition: str) -> set[str]:
    """Every series name a /metrics page declares: the samples it has, and those its families will have
    (a labelled counter shows its HELP and TYPE before its first increment)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names |= {family.name + suffix for suffix in _SUFFIXES[family.type]}
        names |= {sample.name for sample in family.samples}
    return names


def sample_labels(exposition: str, name: str) -> list[dict[str, str]]:
    return [s.labels for f in text_string_to_metric_families(exposition) for s in f.samples if s.name == name]


GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
}


def grafana_to_promql(expr: str) -> str:
    """A panel's query as Grafana sends it: built-in intervals and template variables substituted."""
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", ".*", expr)


# -- what a real replicator and a real operator export -------------------------------------------


def _scrape_replicator(lab: dict[str, Any], cql_session: Any, replication: str, postgres_dsn: str, vault: Any,
                       tmp: Path) -> str:  # fmt: skip
    """A replicator masking with a key from OpenBao into Postgres, after it committed a few rows."""
    keyspace = unique_keyspace("mon")
    run(cql_session, f"CREATE KEYSPACE {keyspace} WITH replication = {replication}")
    run(cql_session, f"CREATE TABLE {keyspace}.people (id int PRIMARY KEY, email text) WITH cdc = true")
    secret = f"cdc-test/monitoring/{uuid.uuid4().hex[:12]}"
    vault.secrets.kv.v2.create_or_update_secret(path=secret, secret={"key": "bW9uaXRvcmluZy10ZXN0LWtleS0wMTIzNDU2Nzg5"})
    schema = f"t_{uuid.uuid4().hex[:10]}"
    port = free_port()
    dests, env = harness.destinations(tmp, schema, postgres_dsn)
    rules = [{"name": "email", "classification": "PII", "match": {"column": "email"}, "action": "hmac",
              "keyRef": "tokens"}]  # fmt: skip
    keys = [{"name": "tokens", "path": secret, "field": "key"}]
    masking = {"policies": [{"name": "people", "rules": rules}], "vault": harness.vault_section(lab, keys)}
    cdc_raw = Path(lab["cassandra"]["nodes"][0]["cdc_raw"])
    config = write_config(tmp / "replicator.yaml", **harness.config(tmp, cdc_raw, keyspace, port, dests, masking))
    replicator = Replicator(config, {**env, **harness.vault_env(lab)}, tmp)
    replicator.start()
    url = f"http://127.0.0.1:{port}/metrics"

    def scrape() -> str:
        status, text = harness.get(url)
        return text if status == 200 else ""

    try:
        for n in range(5):
            run(cql_session, f"INSERT INTO {keyspace}.people (id, email) VALUES ({n}, 'p{n}@example.org')")

        seen: list[str] = []

        def committed() -> bool:
            # One page holds both, and it is the page returned: a later scrape could time out on a busy machine.
            text = scrape()
            masked = [v for v in sample_labels_values(text, "cdc_masking_masked_values_total") if v >= 5]
            if masked and sample_labels(text, "cdc_total_space_bytes"):
                seen.append(text)
            return bool(seen)

        wait_until(committed, 120, "the replicator to mask and commit the rows", replicator.logs)
        return seen[-1]
    finally:
        replicator.stop()
        _drop_schema(postgres_dsn, schema)
        vault.secrets.kv.v2.delete_metadata_and_all_versions(path=secret)
        run(cql_session, f"DROP KEYSPACE {keyspace}")


def sample_labels_values(exposition: str, name: str) -> list[float]:
    return [s.value for f in text_string_to_metric_families(exposition) for s in f.samples if s.name == name]


MINIMAL_PIPELINE = {
    "apiVersion": "cdc.cassandra-cdc.io/v1alpha1",
    "kind": "CdcPipeline",
    "metadata": {"name": "shop"},
    "spec": {
        "source": {
            "contactPoints": ["127.0.0.1:19042"],
            "nodes": [{"name": "node1"}, {"name": "node2"}],
            "cdcRaw": {"hostPath": {"path": "/var/lib/cassandra/{node}/cdc_raw"}},
            "keyspaces": ["shop"],
        },
        "destinations": [
            {
                "name": "warehouse",
                "type": "postgres",
                "endpoint": "127.0.0.1:25432",
                "database": "cdc_postgres",
                "credentials": {"secretRef": {"name": "warehouse-login"}},
            }
        ],
    },
}


def _scrape_operator(lab: dict[str, Any], kube_api: Any, tmp: Path) -> str:
    """The operator after it reconciled a two-node pipeline (as the lab's admin: the operator tests prove
    the chart's RBAC)."""
    from kubernetes import client

    install_crds(kube_api)

    core = client.CoreV1Api(kube_api)
    namespace = f"mon-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name="warehouse-login"), string_data={"username": "u", "password": "p"}
    )
    core.create_namespaced_secret(namespace, secret)
    port, liveness = free_port(), free_port()
    env = {**os.environ, "KUBECONFIG": lab["kubernetes"]["kubeconfig"]}
    env.pop("VAULT_ADDR", None)
    args = [str(CDC_OPERATOR), "run", "-n", namespace, "--metrics-port", str(port), "--liveness-port", str(liveness),
            "--status-seconds", "1", "--resync-seconds", "2", "--status-min-interval", "1"]  # fmt: skip
    log = tmp / "operator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
            "cdc.cassandra-cdc.io", "v1alpha1", namespace, "cdcpipelines", MINIMAL_PIPELINE
        )

        def scrape() -> str:
            status, text = harness.get(f"http://127.0.0.1:{port}/metrics")
            ready = status == 200 and len(sample_labels(text, "cdc_operator_replicator_desired_replicas")) == 2
            return text if ready else ""

        try:
            return str(eventually(scrape, 90, "the operator to export the pipeline's per-node gauges"))
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{log.read_text(errors='replace')[-3000:]}") from None
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        core.delete_namespace(namespace)


@pytest.fixture(scope="session")
def scraped(
    lab: dict[str, Any], cql_session: Any, replication: str, postgres_dsn: str, vault: Any, kube_api: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:  # fmt: skip
    """The /metrics pages of a real replicator and a real operator, each at work."""
    return {
        "replicator": _scrape_replicator(
            lab, cql_session, replication, postgres_dsn, vault, tmp_path_factory.mktemp("replicator")
        ),
        "operator": _scrape_operator(lab, kube_api, tmp_path_factory.mktemp("operator")),
    }


@pytest.fixture(scope="session")
def exported(scraped: dict[str, str]) -> dict[str, set[str]]:
    return {who: exported_names(text) for who, text in scraped.items()}
