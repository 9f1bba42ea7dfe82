"""The chart's alert rules, as ``helm template`` renders them, checked and unit-tested by the real promtool:
every alert (and each of its severities) fires in one case and stays silent in another, names only
metrics the replicator and the operator export, and links a runbook that exists and the README lists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.monitoring.conftest import (
    HERE,
    PENDING_SNAPSHOT_METRICS,
    REPO,
    helm_template,
    only,
    promql_check,
)

pytestmark = pytest.mark.integration

BY = re.compile(r"\bby \(([^)]*)\)")
DEFAULT_RUNBOOKS = "https://github.com/cassandra-cdc/cassandra-cdc/blob/main/docs/runbooks/"


def alert_rules(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


@pytest.fixture(scope="module")
def rules_dir(rendered: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """rules.yaml (the PrometheusRule's groups, exactly as rendered) beside alerts_test.yaml."""
    directory = tmp_path_factory.mktemp("rules")
    groups = only(rendered, "PrometheusRule")["spec"]["groups"]
    (directory / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    shutil.copy(HERE / "alerts_test.yaml", directory / "alerts_test.yaml")
    return directory


def promtool(tools: dict[str, Any], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tools["promtool"], *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_promtool_checks_the_rendered_rules(prometheus_tools: dict[str, Any], rules_dir: Path) -> None:
    result = promtool(prometheus_tools, "check", "rules", "--lint=all", "--lint-fatal", "rules.yaml", cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_pass(prometheus_tools: dict[str, Any], rules_dir: Path) -> None:
    result = promtool(prometheus_tools, "test", "rules", "alerts_test.yaml", cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_fires_once_and_stays_silent_once(rendered: list[dict[str, Any]]) -> None:
    """The unit tests cover each alert: a case where it fires (each severity it has) and one where it is silent."""
    rules = alert_rules(only(rendered, "PrometheusRule")["spec"]["groups"])
    wanted = {(r["alert"], r["labels"]["severity"]) for r in rules}
    cases = yaml.safe_load((HERE / "alerts_test.yaml").read_text())["tests"]
    fired, silent = set(), set()
    for case in cases:
        for check in case.get("alert_rule_test", []):
            if check.get("exp_alerts"):
                fired |= {(check["alertname"], a["exp_labels"]["severity"]) for a in check["exp_alerts"]}
            else:
                silent.add(check["alertname"])
    assert wanted - fired == set(), "alerts (severity) never shown firing"
    assert {a for a, _ in wanted} - silent == set(), "alerts never shown silent"
    assert len({a for a, _ in wanted}) == 11


def test_every_alert_says_what_and_where(rendered: list[dict[str, Any]]) -> None:
    for rule in alert_rules(only(rendered, "PrometheusRule")["spec"]["groups"]):
        annotations, labels = rule["annotations"], rule["labels"]
        assert labels["severity"] in {"warning", "critical"}, rule["alert"]
        assert annotations["summary"], rule["alert"]
        description = annotations["description"]
        grouped_by = {label.strip() for by in BY.findall(rule["expr"]) for label in by.split(",")}
        # The description names every place the alert is about: pipeline, node, destination, key, table.
        for label in grouped_by & {"pipeline", "node", "destination", "key", "table", "reason"}:
            assert f"{{{{ $labels.{label} }}}}" in description, (rule["alert"], label)
        assert "pipeline" in grouped_by, rule["alert"]
        if rule["alert"] != "CdcOperatorReconcileErrors":  # about the pipeline as a whole
            assert "node" in grouped_by, rule["alert"]


def test_alerts_name_only_exported_metrics(
    prometheus_tools: dict[str, Any], rendered: list[dict[str, Any]], exported: dict[str, set[str]]
) -> None:
    rules = alert_rules(only(rendered, "PrometheusRule")["spec"]["groups"])
    results = promql_check(prometheus_tools, [r["expr"] for r in rules])
    known = exported["replicator"] | exported["operator"] | PENDING_SNAPSHOT_METRICS
    for rule, result in zip(rules, results, strict=True):
        assert result["error"] == "", (rule["alert"], result["error"])
        assert set(result["metrics"]) <= known, (rule["alert"], set(result["metrics"]) - known)


def test_runbooks_exist_and_the_readme_links_them(rendered: list[dict[str, Any]]) -> None:
    readme = (REPO / "README.md").read_text()
    rules = alert_rules(only(rendered, "PrometheusRule")["spec"]["groups"])
    alerts = {r["alert"]: r["annotations"]["runbook_url"] for r in rules}
    for alert, url in alerts.items():
        assert url == f"{DEFAULT_RUNBOOKS}{kebab(alert)}.md", alert
        page = REPO / "docs" / "runbooks" / f"{kebab(alert)}.md"
        assert page.is_file(), f"{alert}: no runbook at {page}"
        text = page.read_text()
        assert text.startswith(f"# {alert}"), page
        for section in ("## Meaning", "## Confirm", "## Act"):
            assert section in text, f"{page}: no {section!r} section"
        assert f"docs/runbooks/{kebab(alert)}.md" in readme, f"README does not link the {alert} runbook"


def test_runbook_base_and_thresholds_come_from_values(lab: dict[str, Any]) -> None:
    docs = helm_template(
        lab,
        "--set", "monitoring.rules.enabled=true",
        "--set", "monitoring.rules.runbookBaseUrl=https://git.example.org/acme/cdc/-/blob/v1/docs/runbooks/",
        "--set", "monitoring.rules.lag.warningSeconds=42",
        "--set", "monitoring.rules.cdcRaw.criticalRatio=0.9",
    )  # fmt: skip
    rules = alert_rules(only(docs, "PrometheusRule")["spec"]["groups"])
    assert {r["annotations"]["runbook_url"] for r in rules if r["alert"] == "CdcRawFilling"} == {
        "https://git.example.org/acme/cdc/-/blob/v1/docs/runbooks/cdc-raw-filling.md"
    }
    by_severity = {(r["alert"], r["labels"]["severity"]): r["expr"].strip() for r in rules}
    assert by_severity["CdcReplicationLagHigh", "warning"].endswith("> 42")
    assert by_severity["CdcRawFilling", "critical"].endswith("> 0.9")


def test_monitoring_is_off_by_default(lab: dict[str, Any]) -> None:
    kinds = {d["kind"] for d in helm_template(lab)}
    assert not kinds & {"PrometheusRule", "PodMonitor", "ServiceMonitor"}
    assert not [d for d in helm_template(lab) if d["kind"] == "ConfigMap"]
