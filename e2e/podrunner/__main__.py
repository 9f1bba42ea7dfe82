"""``python -m e2e.podrunner --kubeconfig …``: play the node for the lab's API server."""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from e2e.podrunner.config import DEFAULT_ENTRYPOINTS, RunnerConfig
from e2e.podrunner.runner import Runner


def _pairs(values: Sequence[str], what: str) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key or not value:
            raise SystemExit(f"{what} wants KEY=VALUE, got {v!r}")
        out[key] = value
    return out


def parse(argv: Sequence[str] | None = None) -> tuple[RunnerConfig, Path | None]:
    p = argparse.ArgumentParser(prog="python -m e2e.podrunner", description=__doc__)
    p.add_argument("--kubeconfig", required=True, type=Path)
    p.add_argument("--namespace", help="only pods of this namespace (default: all)")
    p.add_argument("--selector", "-l", help="only pods matching this label selector")
    p.add_argument("--node-name", default="lab-node")
    p.add_argument(
        "--path-map", action="append", default=[], metavar="HOSTPATH=LOCAL", help="where a hostPath volume really is"
    )
    p.add_argument(
        "--entrypoint",
        action="append",
        default=[],
        metavar="IMAGE=COMMAND",
        help="the command standing in for an image's ENTRYPOINT (image without tag); adds to the defaults",
    )
    p.add_argument("--state-dir", type=Path, help="pod roots, logs and claims (default: a new temp dir)")
    p.add_argument("--ready-file", type=Path, help="touched once the node is registered and pods are listed")
    p.add_argument("--backoff-max", type=float, default=20.0, help="cap of the restart backoff, seconds")
    args = p.parse_args(argv)
    entrypoints = dict(DEFAULT_ENTRYPOINTS)
    entrypoints.update({k: shlex.split(v) for k, v in _pairs(args.entrypoint, "--entrypoint").items()})
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="podrunner-", dir="/var/tmp"))
    cfg = RunnerConfig(
        kubeconfig=args.kubeconfig,
        state_dir=state_dir.resolve(),
        node_name=args.node_name,
        namespace=args.namespace,
        label_selector=args.selector,
        path_map=_pairs(args.path_map, "--path-map"),
        entrypoints=entrypoints,
        backoff_max=args.backoff_max,
    )
    return cfg, args.ready_file


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s podrunner %(levelname)s %(message)s")
    cfg, ready_file = parse(argv)
    runner = Runner(cfg)

    def stop(signum: int, _frame: FrameType | None) -> None:
        runner.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.getLogger("podrunner").info("node %s, state in %s", cfg.node_name, cfg.state_dir)
    runner.run(ready_file)
    sys.exit(0)


if __name__ == "__main__":
    main()
