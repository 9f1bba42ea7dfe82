"""The Grafana dashboard the chart ships: a ConfigMap kube-prometheus-stack's sidecar picks up, whose every
query is valid PromQL to Prometheus's own parser and names only metrics a running replicator or operator
exports."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.integration.monitoring.conftest import REPO, grafana_to_promql, only, promql_check

pytestmark = pytest.mark.integration

DASHBOARD = REPO / "charts" / "cdc-operator" / "dashboards" / "cdc-overview.json"
LABEL_VALUES = re.compile(r"^label_values\((?:(.*),\s*)?([A-Za-z_][A-Za-z0-9_]*)\)$")


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out += panel.get("panels", [])  # inside collapsed rows
    return [p for p in out if p["type"] != "row"]


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable, as Grafana would send it."""
    out = [(f"panel {p['title']!r} {t['refId']}", grafana_to_promql(t["expr"])) for p in panels(dashboard)
           for t in p["targets"]]  # fmt: skip
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            continue
        match = LABEL_VALUES.match(var["query"]["query"])
        assert match, f"variable {var['name']}: label_values(<selector>, <label>) expected"
        assert match.group(1), f"variable {var['name']}: label_values(<selector>, <label>) expected"
        out.append((f"variable {var['name']}", grafana_to_promql(match.group(1))))
    return out


def test_the_chart_ships_the_dashboard_for_the_grafana_sidecar(rendered: list[dict[str, Any]]) -> None:
    config_map = only(rendered, "ConfigMap", "-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["cdc-overview.json"]) == json.loads(DASHBOARD.read_text())


def test_the_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"]
    assert dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "pipeline", "node", "destination"} <= variables
    for panel in panels(dashboard):
        assert panel["title"], panel["id"]
        assert panel["description"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_query_parses_and_names_only_exported_metrics(
    prometheus_tools: dict[str, Any], exported: dict[str, set[str]]
) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    found = queries(dashboard)
    results = promql_check(prometheus_tools, [q for _, q in found])
    known = exported["replicator"] | exported["operator"]
    used: set[str] = set()
    for (where, query), result in zip(found, results, strict=True):
        assert result["error"] == "", f"{where}: {query}: {result['error']}"
        assert result["metrics"], f"{where}: selects no metric"
        assert set(result["metrics"]) <= known, f"{where}: not exported: {set(result['metrics']) - known}"
        used |= set(result["metrics"])
    # What the dashboard is for: flow, lag percentiles, cdc_raw against its limit, segments, dead letters,
    # errors by type, masking counts, key versions, operator reconciles.
    assert {
        "cdc_events_processed_total",
        "cdc_event_lag_seconds_bucket",
        "cdc_raw_bytes",
        "cdc_total_space_bytes",
        "cdc_segments_pending",
        "cdc_dead_letters_total",
        "cdc_errors_total",
        "cdc_masking_masked_values_total",
        "cdc_masking_key_version",
        "cdc_operator_reconciliations_total",
    } <= used


def test_the_parser_is_the_real_one(prometheus_tools: dict[str, Any]) -> None:
    """promql-check refuses what Prometheus refuses (so a passing dashboard means something)."""
    bad, good = promql_check(prometheus_tools, ["rate(cdc_events_processed_total[5m]", "sum(up)"])
    assert "unclosed" in bad["error"] or "unexpected" in bad["error"]
    assert good == {"expr": "sum(up)", "error": "", "metrics": ["up"]}
