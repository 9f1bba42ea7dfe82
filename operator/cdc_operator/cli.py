"""The ``cdc-operator`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cdc_operator import __version__

DESCRIPTION = """\
Kubernetes operator for Cassandra change data capture.

Reconciles CdcPipeline and MaskingPolicy custom resources into one replicator
Deployment per Cassandra node, injects credentials from Vault and TLS material,
and reports per-destination lag and offsets in each pipeline's status.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cdc-operator",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
