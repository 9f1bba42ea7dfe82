"""``python -m e2e.lab up|down|status|nodetool``: the lab's command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from e2e.lab import cassandra
from e2e.lab.control import SERVICES, down, status, up
from e2e.lab.errors import LabError
from e2e.lab.layout import Layout

__all__ = ["SERVICES", "build_parser", "down", "main", "status", "up"]

DESCRIPTION = """\
Starts every real service the product talks to on this machine (Cassandra, PostgreSQL with
TimescaleDB, a ClickHouse server, OpenBao, a Kubernetes API), on private ports and
data directories, and reports where each one runs.

  up       start what is not running (idempotent), wait for real readiness
  down     stop everything (--purge also deletes the data)
  status   report services, ports, paths and versions (--json for machines)
  nodetool run Cassandra's nodetool against a lab node

First start downloads and builds into ~/.cache/cdc-lab (several minutes); later starts
reuse it. Data lives in $CDC_LAB_DIR (default /var/tmp/cdc-lab).
"""


def _print_human(report: dict[str, Any]) -> None:
    c = report["cassandra"]
    print(f"cassandra   {c.get('version') or 'not running'}")
    for node in [*c["nodes"], *([c["lz4_node"]] if "lz4_node" in c else [])]:
        print(f"  {node['name']}  {node['address']}:{node['cql_port']}  cdc_raw={node['cdc_raw']}")
    for name, key in (
        ("postgres", "dsn"),
        ("timescaledb", "dsn"),
        ("clickhouse", "url"),
        ("openbao", "addr"),
        ("kubernetes", "kubeconfig"),
        ("etcd", "endpoint"),
    ):
        s = report[name]
        where = s.get(key, "not running") if s["running"] else "not running"
        print(f"{name:<11} {s.get('version', '') or '':<12} {where}")
        if name == "clickhouse":
            print(f"  chdb      {s['chdb']['version']:<12} {s['chdb']['dsn']}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m e2e.lab", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p_up = sub.add_parser("up", help="start the lab (idempotent)")
    p_up.add_argument(
        "--cassandra-nodes",
        type=int,
        default=1,
        choices=range(1, 4),
        metavar="N",
        help="Cassandra nodes on 127.0.0.1..N (1-3, default 1)",
    )
    p_up.add_argument(
        "--cassandra-lz4",
        action="store_true",
        help="also start a one-node cluster on 127.0.0.11 writing LZ4-compressed version-8 segments",
    )
    p_up.add_argument("--cassandra-heap", help="JVM heap per Cassandra node (default 1024M, 768M for 3 nodes)")
    p_up.add_argument(
        "--only",
        nargs="+",
        choices=SERVICES,
        default=list(SERVICES),
        help="start only these services (openbao brings kubernetes along)",
    )
    p_up.add_argument("--json", action="store_true", help="print the status as JSON when up")
    p_down = sub.add_parser("down", help="stop the lab")
    p_down.add_argument("--purge", action="store_true", help="also delete all lab data")
    p_status = sub.add_parser("status", help="report what runs where")
    p_status.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p_nt = sub.add_parser("nodetool", help="run nodetool against a Cassandra node")
    p_nt.add_argument("--node", type=int, default=1, help="node number (default 1)")
    p_nt.add_argument("args", nargs=argparse.REMAINDER, help="nodetool arguments, e.g. flush")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    layout = Layout.default()
    layout.root.mkdir(parents=True, exist_ok=True)
    try:
        if args.command == "up":
            report = up(layout, args.only, args.cassandra_nodes, args.cassandra_heap, args.cassandra_lz4)
            if args.json:
                print(json.dumps(report, indent=2))
            else:
                _print_human(report)
        elif args.command == "down":
            down(layout, args.purge)
        elif args.command == "status":
            report = status(layout)
            if args.json:
                print(json.dumps(report, indent=2))
            else:
                _print_human(report)
            return 0 if report["ready"] else 1
        elif args.command == "nodetool":
            node = next((n for n in cassandra.running_nodes(layout) if n.index == args.node - 1), None)
            if node is None:
                raise LabError("cassandra", f"node {args.node} is not running")
            print(cassandra.nodetool(layout, node, *args.args), end="")
    except LabError as exc:
        print(exc.describe(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
