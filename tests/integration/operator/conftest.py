"""Fixtures of the operator's integration tests: our CRDs installed in the lab's API server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from cdc_operator.api import crds
from kubernetes import client
from kubernetes.client.rest import ApiException


def eventually(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; the value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def install_crds(kube_api: Any) -> None:
    """Create or update our CRDs from the models (not the files: the unit test keeps those equal)."""
    ext = client.ApiextensionsV1Api(kube_api)
    for wanted in crds.all_crds().values():
        name = wanted["metadata"]["name"]
        try:
            current = ext.read_custom_resource_definition(name)
            meta = {**wanted["metadata"], "resourceVersion": current.metadata.resource_version}
            ext.replace_custom_resource_definition(name, {**wanted, "metadata": meta})
        except ApiException as exc:
            if exc.status != 404:
                raise
            ext.create_custom_resource_definition(wanted)

        def established(name: str = name) -> bool:
            got = ext.read_custom_resource_definition(name)
            return any(c.type == "Established" and c.status == "True" for c in (got.status.conditions or []))

        eventually(established, 30, f"CRD {name} to be established")


@pytest.fixture(scope="session")
def cdc_crds(kube_api: Any) -> None:
    install_crds(kube_api)
