"""The one base model of the contract: every document the operator and the replicator exchange.

camelCase on the wire (as in the CRDs and the config file), snake_case in Python; unknown
keys are errors, so a typo fails at start instead of being ignored; instances are immutable.
The operator's API models derive from it too, so CRDs, config and checkpoint speak alike.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ContractModel(BaseModel):
    """camelCase aliases, ``extra="forbid"``, frozen."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)

    def wire(self) -> dict[str, Any]:
        """The document as it is stored (camelCase, no unset optionals)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ReportModel(ContractModel):
    """A report one side writes and the other reads: unknown keys are ignored, not refused,
    since a newer writer may report more than an older reader knows."""

    model_config = ConfigDict(extra="ignore")
