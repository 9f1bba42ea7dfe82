"""The checkpoint file: what a replicator reports of its progress, and the operator folds into status.

The replicator writes it (``cdc_replicator.pipeline.checkpoint``), the sidecar copies it verbatim into the
node's checkpoint ConfigMap, the operator reads it (``cdc_operator.status``).
"""

from __future__ import annotations

from pydantic import Field

from cdc_replicator.contract.base import ReportModel


class DestinationProgress(ReportModel):
    """One destination's progress, as the replicator reports it in the checkpoint file."""

    name: str = Field(description="Destination name.")
    position: str | None = Field(default=None, description="Committed source position, 'segment:offset'.")
    lag_seconds: float | None = Field(default=None, description="Now minus the write time of the last committed event.")
    last_error: str | None = Field(default=None, description="Last error from the destination; None when healthy.")
    events_total: int = Field(default=0, description="Events committed since the replicator started.")


class CheckpointReport(ReportModel):
    """The checkpoint file (``checkpoint.path``): written atomically (temp file + rename) after each commit and
    at least every ``checkpoint.intervalSeconds`` when idle, so a stale ``updatedAt`` means a stuck replicator.
    The sidecar copies it verbatim into the node's checkpoint ConfigMap; the operator folds it into status.
    Unknown keys are ignored here (not forbidden): a newer replicator may report more."""

    node: str = Field(description="Cassandra node name.")
    updated_at: str = Field(description="When the file was written, RFC 3339 UTC.")
    destinations: list[DestinationProgress] = Field(default_factory=list, description="Per destination.")
