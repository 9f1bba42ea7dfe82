"""What the lab runs, as functions: ``up``, ``down`` and the live ``status`` report.

The command line (``python -m e2e.lab``), the test fixtures, the demo and the benchmarks all
call these; none of them imports the command-line module.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from typing import Any

from e2e.lab import cassandra, clickhouse, kubernetes, openbao, postgres, prometheus
from e2e.lab.layout import Layout

SERVICES = ("postgres", "cassandra", "clickhouse", "kubernetes", "openbao")


def status(layout: Layout) -> dict[str, Any]:
    """What runs now, probed live rather than remembered."""
    report: dict[str, Any] = {"lab": {"dir": str(layout.root), "cache": str(layout.cache)}}
    running = cassandra.running_nodes(layout)
    report["cassandra"] = {
        "running": bool(running),
        "version": cassandra.version(running[0]) if running else None,
        "nodes": [n.describe() for n in running],
        "cluster_name": "cdc-lab",
    }
    lz4 = cassandra.lz4_node(layout)
    if cassandra.is_running(lz4):
        report["cassandra"]["lz4_node"] = lz4.describe() | {"cluster_name": lz4.cluster_name}
    if postgres.is_running(layout):
        report |= postgres.describe(layout)
    else:
        report |= {"postgres": {"running": False}, "timescaledb": {"running": False}}
    if kubernetes.is_running(layout):
        report |= kubernetes.describe(layout)
    else:
        report |= {"kubernetes": {"running": False}, "etcd": {"running": False}}
    report |= openbao.describe(layout) if openbao.is_running(layout) else {"openbao": {"running": False}}
    report |= clickhouse.describe(layout)
    if layout.promtool_bin.exists():
        report |= prometheus.describe(layout)
    for name in ("postgres", "timescaledb", "kubernetes", "etcd", "openbao", "clickhouse"):
        report[name].setdefault("running", True)
    report["ready"] = all(report[s]["running"] for s in SERVICES)
    return report


def up(layout: Layout, services: Sequence[str], nodes: int, heap: str | None, lz4: bool = False) -> dict[str, Any]:
    started = time.monotonic()
    if "postgres" in services:
        postgres.up(layout)
    if "cassandra" in services:
        cassandra.up(layout, nodes, heap)
        if lz4:
            cassandra.up_lz4(layout)
    if "clickhouse" in services:
        clickhouse.up(layout)
    if "kubernetes" in services or "openbao" in services:
        kubernetes.up(layout)
    if "openbao" in services:
        openbao.up(layout)
    if "kubernetes" in services:
        prometheus.install(layout)  # tools only, beside the Kubernetes ones: nothing to start
    report = status(layout)
    layout.status_file.write_text(json.dumps(report, indent=2))
    print(f"lab: up in {time.monotonic() - started:.1f}s; status in {layout.status_file}", flush=True)
    return report


def down(layout: Layout, purge: bool) -> None:
    openbao.down(layout)
    kubernetes.down(layout)
    clickhouse.down(layout)
    cassandra.down(layout)
    postgres.down(layout)
    layout.status_file.unlink(missing_ok=True)
    if purge:
        shutil.rmtree(layout.root, ignore_errors=True)
        print(f"lab: removed {layout.root}", flush=True)
