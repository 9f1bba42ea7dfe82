"""The checkpoint file the operator's sidecar reads: written atomically (temp file + rename)."""

from __future__ import annotations

import datetime
import os
import tempfile
from pathlib import Path

from cdc_replicator.contract.checkpoint import CheckpointReport, DestinationProgress


def render(node: str, destinations: list[DestinationProgress], now: datetime.datetime | None = None) -> str:
    moment = now or datetime.datetime.now(datetime.UTC)
    report = CheckpointReport(
        node=node,
        updated_at=moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
        destinations=destinations,
    )
    return report.model_dump_json(by_alias=True, indent=2)


def write(path: Path, text: str) -> None:
    """Replace ``path`` atomically: readers see the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
