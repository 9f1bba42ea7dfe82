"""kopf handlers: thin, each one hands over to :class:`~cdc_operator.runtime.Runtime`.

Importing this module registers the handlers with kopf's default registry; ``cdc-operator run``
does so after :func:`configure` has set the runtime up.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from cdc_operator.api.base import GROUP, VERSION
from cdc_operator.runtime import Runtime

log = logging.getLogger(__name__)

_runtime: Runtime | None = None
_stop = asyncio.Event()
_tasks: list[asyncio.Task[None]] = []

PIPELINES = (GROUP, VERSION, "cdcpipelines")
POLICIES = (GROUP, VERSION, "maskingpolicies")
RETRY_DELAY = 10.0


def configure(runtime: Runtime) -> None:
    global _runtime  # noqa: PLW0603 - kopf handlers are module-level functions; this is their context
    _runtime = runtime


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("cdc_operator.handlers.configure() was not called")
    return _runtime


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    # One replica with strategy Recreate (the chart): no peering objects needed, none to freeze on.
    settings.peering.standalone = True
    # kopf's bookkeeping under our own prefix, and no finalizer (we have no delete handler and no timers).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    # Watch streams have died silently before: bound every wait explicitly.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.watching.inactivity_timeout = 600
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 30
    _stop.clear()
    _tasks.append(asyncio.create_task(runtime().loop(_stop), name="cdc-periodic-sync"))


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    _stop.set()
    for task in _tasks:
        task.cancel()


async def _sync(namespace: str, name: str) -> None:
    try:
        await runtime().sync_pipeline(namespace, name)
    except ApiException as exc:
        # API hiccups (conflicts, 5xx, throttling): kopf retries the handler later.
        raise kopf.TemporaryError(f"API error {exc.status}: {exc.reason}", delay=RETRY_DELAY) from exc


@kopf.on.resume(*PIPELINES)
@kopf.on.create(*PIPELINES)
@kopf.on.update(*PIPELINES)
async def pipeline_changed(namespace: str | None, name: str, **_: Any) -> None:
    assert namespace is not None  # namespaced kinds
    await _sync(namespace, name)


@kopf.on.resume(*POLICIES)
@kopf.on.create(*POLICIES)
@kopf.on.update(*POLICIES)
async def policy_changed(namespace: str | None, name: str, **_: Any) -> None:
    assert namespace is not None
    try:
        await runtime().policy_changed(namespace, name)
    except ApiException as exc:
        raise kopf.TemporaryError(f"API error {exc.status}: {exc.reason}", delay=RETRY_DELAY) from exc


@kopf.on.delete(*POLICIES, optional=True)  # optional: no finalizer, the policy may go at any time
async def policy_deleted(namespace: str | None, name: str, **_: Any) -> None:
    """Pipelines still referencing it turn Ready=False with MaskingPolicyNotFound."""
    assert namespace is not None
    await runtime().policy_changed(namespace, name, deleted=True)
