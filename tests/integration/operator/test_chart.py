"""The Helm chart lints clean in its variants and carries the generated CRDs."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml
from cdc_operator.api import crds

from tests.integration.operator.conftest import CHART

pytestmark = pytest.mark.integration

VARIANTS = [
    [],
    ["--set", "watchNamespaces={team-a,team-b}", "--set", "metrics.serviceMonitor.enabled=true"],
    ["--set", "vault.enabled=true", "--set", "vault.addr=http://openbao:8200"],
    ["--set", "vault.enabled=true", "--set", "vault.addr=http://v:8200", "--set", "vault.auth=token",
     "--set", "vault.tokenSecret.name=vault-token"],
]  # fmt: skip


def test_chart_lints_and_renders(lab: dict[str, Any]) -> None:
    helm = lab["kubernetes"]["helm"]
    for variant in VARIANTS:
        lint = subprocess.run(
            [helm, "lint", "--strict", str(CHART), *variant], check=False, capture_output=True, text=True
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
    rendered = subprocess.run(
        [helm, "template", "r", str(CHART), "--kube-version", "1.36.0", *VARIANTS[1]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "--namespace=team-a" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    bindings = [d for d in docs if d["kind"] == "RoleBinding"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    # A bad value is refused by values.schema.json.
    bad = subprocess.run(
        [helm, "lint", str(CHART), "--set", "vault.auth=ldap"], check=False, capture_output=True, text=True
    )
    assert bad.returncode != 0


def test_chart_crds_are_the_generated_ones() -> None:
    for name, crd in crds.all_crds().items():
        assert (CHART / "crds" / name).read_text() == crds.render(crd)
