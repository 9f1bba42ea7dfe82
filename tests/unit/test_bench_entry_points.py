"""``make bench`` runs each benchmark as ``python -m bench.<name>``: each must at least start.

A benchmark is not run by the tests (they check behaviour, never timings), so an import that
breaks one (as ``e2e.lab`` did when a script was run by path) would otherwise go unnoticed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.stem for p in (ROOT / "bench").glob("*.py") if p.stem != "__main__")


def test_every_benchmark_is_listed() -> None:
    assert {"decode", "masking", "replicate"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_module_starts_and_explains_itself(name: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--help"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout
