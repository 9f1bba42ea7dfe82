"""A destination worker survives a bug in its sink: reported (health, error metric), retried, never silent."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from cdc_replicator.contract.config import Tuning
from cdc_replicator.events import ChangeEvent, Position
from cdc_replicator.observability.metrics import Metrics
from cdc_replicator.pipeline.worker import FeedState, Worker
from cdc_replicator.sinks.base import TableOf, WriteResult

pytestmark = pytest.mark.unit


class _BuggySink:
    """A sink whose start fails with an unexpected exception (a bug, not an outage) twice."""

    name = "buggy"

    def __init__(self) -> None:
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        if self.starts <= 2:
            raise KeyError("column_that_is_not_there")

    async def committed(self) -> Position | None:
        return None

    async def write(self, events: Sequence[ChangeEvent], table_of: TableOf, upto: Position) -> WriteResult:
        return WriteResult()

    async def ping(self) -> float:
        return 0.0

    async def close(self) -> None:
        return None


def test_an_unexpected_exception_is_reported_and_retried_not_fatal() -> None:
    sink = _BuggySink()
    metrics = Metrics()
    tuning = Tuning(retry_initial_seconds=0.01, retry_max_seconds=0.02)

    def catch_up(start: Any, emit: Any, idle: Any) -> Position | None:
        return start  # type: ignore[no-any-return]

    worker = Worker(sink, lambda e: None, tuning, metrics, FeedState(), catch_up)  # type: ignore[arg-type]
    errors: list[str | None] = []

    async def scenario() -> None:
        stopping = asyncio.Event()
        task = asyncio.create_task(worker.run(stopping))
        deadline = asyncio.get_running_loop().time() + 10
        while sink.starts < 3 and not task.done() and asyncio.get_running_loop().time() < deadline:
            if worker.progress.last_error:
                errors.append(worker.progress.last_error)
            await asyncio.sleep(0.005)
        stopping.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    assert sink.starts >= 3, "the worker kept retrying after the bug"
    assert errors
    assert errors[0].startswith("internal error: KeyError")
    assert metrics.errors.labels("buggy", "internal")._value.get() >= 2
