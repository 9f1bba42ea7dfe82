"""``/health``: each dependency's status as JSON, healthy only when every one is up.

The destinations (pinged, with their latency, position, lag and last error), the node's
cdc_raw directory, and Cassandra (reachable for the schema). A destination that fails its
ping records the reason as its last error, which the checkpoint file then carries too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cdc_replicator.pipeline.worker import Worker

PING_TIMEOUT_S = 5.0


async def _destination(worker: Worker) -> dict[str, Any]:
    begin = time.monotonic()
    try:
        latency = await asyncio.wait_for(worker.sink.ping(), PING_TIMEOUT_S) if worker.progress.up else None
        status = "up" if worker.progress.up else "down"
    except Exception as exc:  # any failure of the ping means "down"; its text is the reason
        latency, status = time.monotonic() - begin, "down"
        worker.progress.last_error = str(exc)
    committed = worker.progress.committed
    return {
        "status": status,
        "latency_ms": None if latency is None else round(latency * 1000, 2),
        "attached": worker.attached,
        "position": None if committed is None else str(committed),
        "lag_seconds": worker.lag(),
        "last_error": worker.progress.last_error,
    }


async def check_health(
    workers: Sequence[Worker], cdc_raw: Path, cassandra_up: bool, cassandra_error: str | None
) -> tuple[bool, dict[str, Any]]:
    """``(healthy, document)`` for ``observability.http``."""
    deps: dict[str, Any] = {worker.name: await _destination(worker) for worker in workers}
    readable = cdc_raw.is_dir()
    deps["cdc_raw"] = {"status": "up" if readable else "down", "path": str(cdc_raw)}
    deps["cassandra"] = {"status": "up" if cassandra_up else "down", "last_error": cassandra_error}
    healthy = all(dep["status"] == "up" for dep in deps.values())
    return healthy, {"status": "healthy" if healthy else "unhealthy", "dependencies": deps}
