"""Representative pipeline inputs for the render tests, built from the examples."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml
from cdc_operator.api.masking import MaskingPolicySpec
from cdc_operator.api.pipeline import CdcPipelineSpec
from cdc_operator.render.inputs import PipelineInputs, Policy, credential_needs, masking_key_needs, resolve_nodes

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def example(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((EXAMPLES / name).read_text()))


def make_inputs(
    spec: dict[str, Any] | None = None,
    *,
    pods: list[tuple[str, str | None]] | None = None,
    policy_generation: int = 1,
    secret_value: str = "s3cret",
) -> PipelineInputs:
    pipeline = CdcPipelineSpec.model_validate(spec or example("pipeline-three-nodes.yaml")["spec"])
    policy = Policy(
        "customer-pii", policy_generation, MaskingPolicySpec.model_validate(example("masking-policy.yaml")["spec"])
    )
    policies = [policy] if pipeline.masking_policy_refs else []
    env = {need.env: f"{secret_value}-{need.env}" for need in credential_needs(pipeline)}
    for key in masking_key_needs(pipeline):
        env[key.env] = base64.b64encode(f"{secret_value}-key-material".encode()).decode()
        env[f"{key.env}_VERSION"] = "1"
    return PipelineInputs(
        name="shop",
        namespace="team-a",
        uid="0b9f6d9e-0000-4000-8000-000000000001",
        spec=pipeline,
        nodes=resolve_nodes(pipeline, pods or []),
        policies=policies,
        secret_env=env,
    )


@pytest.fixture
def three_node_inputs() -> PipelineInputs:
    return make_inputs()
