"""The ``cdc-replicator`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cdc_replicator import __version__, app, dump

DESCRIPTION = """\
Streams every change of a Cassandra node into Postgres, TimescaleDB and ClickHouse.

One replicator runs beside each Cassandra node. It reads the CDC commitlog segments
that Cassandra hard-links into cdc_raw/, decodes them into change events carrying
Cassandra's own write timestamps, masks PII/PHI by policy, and writes each destination
idempotently with its offset committed alongside the data.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cdc-replicator",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    dump.add_parser(commands)
    app.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
