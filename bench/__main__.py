"""``make bench``: every benchmark against the lab, one JSON object per line on stdout.

Progress goes to stderr. The decode benchmark's corpus (200 MB of real segments) is written
once through the lab's node 1 and kept in ``$CDC_LAB_DIR/bench-corpus``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from e2e.lab.control import status
from e2e.lab.layout import Layout

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str) -> None:
    # As modules from the repository root, so the scripts can import the lab's helpers (e2e.lab).
    module = f"bench.{script.removesuffix('.py')}"
    print(f"bench: python -m {module} {' '.join(args)}", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", module, *args], check=True, cwd=ROOT)


def main() -> int:
    layout = Layout.default()
    lab = status(layout)
    node = lab["cassandra"]["nodes"][0]
    cassandra = f"{node['address']}:{node['cql_port']}"
    corpus = layout.root / "bench-corpus"
    _run("masking.py")
    if not any(corpus.glob("*.log")):
        _run(
            "decode.py",
            "--corpus",
            str(corpus),
            "--cassandra",
            cassandra,
            "--generate-mb",
            "200",
            "--cdc-raw",
            node["cdc_raw"],
        )
    else:
        _run("decode.py", "--corpus", str(corpus), "--cassandra", cassandra)
    _run("replicate.py")
    _run("replicate.py", "--drain", "100000", "--rounds", "5")  # masked vs unmasked end to end
    return 0


if __name__ == "__main__":
    sys.exit(main())
