"""The committed CRDs are generated from the API models and teach `kubectl explain`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cdc_operator.api import crds
from cdc_operator.api.base import undocumented
from cdc_operator.api.masking import MaskingPolicySpec
from cdc_operator.api.pipeline import CdcPipelineSpec

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.parametrize("directory", crds.CRD_DIRS, ids=lambda d: str(d.relative_to(crds.REPO_ROOT)))
def test_committed_crds_are_up_to_date(directory: Path) -> None:
    for name, crd in crds.all_crds().items():
        committed = (directory / name).read_text()
        assert committed == crds.render(crd), f"{directory / name} is stale: run `make crds`"


@pytest.mark.parametrize("crd", crds.all_crds().values(), ids=lambda c: c["metadata"]["name"])
def test_every_field_has_a_description(crd: dict[str, Any]) -> None:
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert undocumented(schema) == []


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@pytest.mark.parametrize("crd", crds.all_crds().values(), ids=lambda c: c["metadata"]["name"])
def test_schema_is_structural(crd: dict[str, Any]) -> None:
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for node in _walk(schema["properties"]):
        for banned in ("$ref", "anyOf", "oneOf", "allOf", "const", "title", "$defs"):
            assert banned not in node
        if "properties" in node or "items" in node:
            assert node.get("type") in {"object", "array"}


def test_names_categories_and_wide_columns() -> None:
    pipeline, policy = crds.cdc_pipeline_crd(), crds.masking_policy_crd()
    assert pipeline["spec"]["names"]["shortNames"] == ["cdcp"]
    assert policy["spec"]["names"]["shortNames"] == ["mp"]
    assert pipeline["spec"]["names"]["categories"] == policy["spec"]["names"]["categories"] == ["cdc"]
    columns = pipeline["spec"]["versions"][0]["additionalPrinterColumns"]
    assert {c["name"] for c in columns if "priority" not in c} >= {"Ready", "Phase", "Max Lag", "Destinations", "Age"}
    assert any(c.get("priority") == 1 for c in columns)
    status = pipeline["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status["properties"]["conditions"]["x-kubernetes-list-type"] == "map"


def test_examples_parse_with_the_models() -> None:
    kinds = {"CdcPipeline": CdcPipelineSpec, "MaskingPolicy": MaskingPolicySpec}
    seen = 0
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") in kinds:
                kinds[doc["kind"]].model_validate(doc["spec"])
                seen += 1
    assert seen >= 3
