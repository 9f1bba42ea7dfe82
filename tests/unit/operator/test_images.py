"""The images: Dockerfiles lint clean (hadolint) and the operator runs with only its own extra."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
HADOLINT = Path(sys.executable).parent / "hadolint"
DOCKERFILES = ["Dockerfile.operator", "Dockerfile.replicator"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_lints_clean_and_runs_as_non_root(dockerfile: str) -> None:
    lint = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "info", str(ROOT / dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    text = (ROOT / dockerfile).read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    for image in re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE):
        assert ":" in image
        assert not image.endswith(":latest")


def test_operator_imports_nothing_of_the_replicators_heavy_dependencies() -> None:
    """The operator image installs only the `operator` extra: importing the operator must not need
    cassandra-driver, asyncpg, clickhouse-connect or the masking package."""
    probe = (
        "import sys; import cdc_operator.cli, cdc_operator.handlers, cdc_operator.runtime, cdc_operator.sidecar;"
        "heavy = ('cassandra', 'asyncpg', 'clickhouse_connect', 'chdb', 'lz4', 'cdc_replicator.masking');"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
