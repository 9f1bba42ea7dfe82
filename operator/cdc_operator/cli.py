"""The ``cdc-operator`` command line: ``run`` (the operator), ``checkpoint-sidecar``, ``crds``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from cdc_operator import __version__

DESCRIPTION = """\
Kubernetes operator for Cassandra change data capture.

Reconciles CdcPipeline and MaskingPolicy custom resources into one replicator
Deployment per Cassandra node, injects credentials from Vault and TLS material,
and reports per-destination lag and offsets in each pipeline's status.

Vault is configured from the environment: VAULT_ADDR (unset: no Vault), VAULT_AUTH
(kubernetes|token), VAULT_ROLE, VAULT_AUTH_PATH, VAULT_KV_MOUNT, VAULT_TOKEN,
VAULT_TOKEN_FILE, VAULT_JWT_FILE.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cdc-operator",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run the operator (kopf)")
    run.add_argument("--namespace", "-n", action="append", default=[], help="watch only this namespace (repeatable)")
    run.add_argument("--metrics-port", type=int, default=9090, help="Prometheus /metrics port (0: off)")
    run.add_argument("--liveness-port", type=int, default=8080, help="liveness endpoint /healthz port")
    run.add_argument("--resync-seconds", type=float, default=60.0, help="full reconcile of every pipeline (Vault)")
    run.add_argument("--status-seconds", type=float, default=10.0, help="how often checkpoints are folded in")
    run.add_argument("--status-min-interval", type=float, default=30.0, help="minimum time between lag-only patches")
    run.add_argument("--checkpoint-stale-seconds", type=float, default=120.0, help="checkpoint age that is Degraded")
    run.add_argument("--verbose", "-v", action="store_true", help="debug logging")

    side = sub.add_parser("checkpoint-sidecar", help="publish the replicator's checkpoint file into a ConfigMap")
    side.add_argument("--file", required=True, help="the replicator's checkpoint file")
    side.add_argument("--configmap", required=True, help="the node's checkpoint ConfigMap")
    side.add_argument("--namespace", help="default: $POD_NAMESPACE")
    side.add_argument("--interval", type=float, default=5.0, help="seconds between reads")

    crds = sub.add_parser("crds", help="regenerate crds/*.yaml from the API models")
    crds.add_argument("--out", action="append", help="directory to write to (repeatable)")
    return parser


def _run(args: argparse.Namespace) -> int:
    # Imported here: `crds` and `checkpoint-sidecar` must not pay for kopf (nor need it installed).
    import kopf  # noqa: PLC0415
    from prometheus_client import start_http_server  # noqa: PLC0415

    from cdc_operator import handlers, kube  # noqa: PLC0415
    from cdc_operator.runtime import Runtime, Settings  # noqa: PLC0415
    from cdc_operator.vault import VaultReader, VaultSettings  # noqa: PLC0415

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    vault_settings = VaultSettings.from_env()
    settings = Settings(
        namespaces=tuple(args.namespace),
        resync_seconds=args.resync_seconds,
        status_seconds=args.status_seconds,
        status_min_interval=args.status_min_interval,
        checkpoint_stale_seconds=args.checkpoint_stale_seconds,
    )
    handlers.configure(
        Runtime(api=kube.api_client(), vault=VaultReader(vault_settings) if vault_settings else None, settings=settings)
    )
    if args.metrics_port:
        start_http_server(args.metrics_port)
    kopf.run(
        standalone=True,
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        liveness_endpoint=f"http://0.0.0.0:{args.liveness_port}/healthz",
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "checkpoint-sidecar":
        from cdc_operator import sidecar  # noqa: PLC0415

        return sidecar.main(args.file, args.configmap, args.namespace, args.interval)
    if args.command == "crds":
        from cdc_operator.api import crds  # noqa: PLC0415

        return crds.main([x for d in (args.out or []) for x in ("--out", d)])
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
