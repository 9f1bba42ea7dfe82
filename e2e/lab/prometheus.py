"""Prometheus's own tooling for the monitoring tests: promtool, a PromQL checker, the Prometheus operator's CRDs.

Nothing runs: ``promtool check rules`` / ``promtool test rules`` check and unit-test the chart's alert
rules, ``promql-check`` (tools/promql-check, built against the same Prometheus module) parses the
dashboard's queries and names their metrics, and the CRDs let the lab's API server accept the
chart's PrometheusRule, PodMonitor and ServiceMonitor. All come from the Go module proxy
(``tools/build-promtool.sh``), cached by version under ``~/.cache/cdc-lab``.
"""

from __future__ import annotations

from typing import Any

from e2e.lab import procs
from e2e.lab.errors import LabError
from e2e.lab.layout import PROMETHEUS_OPERATOR_VERSION, PROMETHEUS_VERSION, Layout


def install(layout: Layout) -> None:
    procs.run(
        ["bash", layout.tools_dir / "build-promtool.sh"],
        "promtool",
        env={
            "PROMETHEUS_VERSION": PROMETHEUS_VERSION,
            "PROMETHEUS_OPERATOR_VERSION": PROMETHEUS_OPERATOR_VERSION,
            "OUT": str(layout.promtool_bin.parent),
            "CRD_OUT": str(layout.prometheus_operator_crds),
        },
        timeout=2400,
    )


def describe(layout: Layout) -> dict[str, Any]:
    for path in (layout.promtool_bin, layout.promql_check_bin, layout.prometheus_operator_crds):
        if not path.exists():
            raise LabError("promtool", f"{path} missing: run `python -m e2e.lab up`")
    return {
        "prometheus": {
            "promtool": str(layout.promtool_bin),
            "promql_check": str(layout.promql_check_bin),
            "version": PROMETHEUS_VERSION,
            "operator_crds": str(layout.prometheus_operator_crds),
            "operator_version": PROMETHEUS_OPERATOR_VERSION,
        }
    }
