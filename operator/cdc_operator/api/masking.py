"""The MaskingPolicy kind: which columns are sensitive and what the replicator does with them.

The spec *is* the replicator's own policy model (``cdc_replicator.contract.policy``): the masking
module owns the rules' semantics and their CEL rules, and the CRD's spec schema is generated from
it (``crd_schema``), so the API server, the operator and the replicator agree on one definition.
Rules name keys and salts (``keyRef``/``saltRef``); where those live in Vault is configured per
pipeline (``CdcPipeline.spec.maskingKeys``), so one policy serves pipelines with different keys.
"""

from __future__ import annotations

from cdc_replicator.contract.policy import KeySource, MaskingPolicySpec, MaskingRule, crd_schema
from pydantic import Field

from cdc_operator.api.base import ApiModel
from cdc_operator.api.common import ConditionList

__all__ = ["KeySource", "MaskingPolicySpec", "MaskingPolicyStatus", "MaskingRule", "crd_schema"]


class MaskingPolicyStatus(ApiModel):
    """Which pipelines use this policy."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    observed_generation: int | None = Field(default=None, description="Generation last seen by the operator.")
    rule_count: int | None = Field(default=None, description="Number of rules.")
    pipeline_count: int | None = Field(default=None, description="Number of CdcPipelines referencing it.")
    pipelines: list[str] = Field(default_factory=list, max_length=256, description="CdcPipelines referencing it.")
    conditions: ConditionList
