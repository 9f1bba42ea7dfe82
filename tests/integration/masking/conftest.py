"""Fixtures for masking against the lab's OpenBao: fresh secret paths, restricted tokens, a key store."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import hvac.exceptions
import pytest
from cdc_replicator.masking.audit import MaskingMetrics
from prometheus_client import CollectorRegistry

# The replicator tests' fixtures, for the masking tests that run the whole replicator.
from tests.integration.replicator.conftest import _drop_schema, cdc_raw, pg_schema, registry

__all__ = ["cdc_raw", "pg_schema", "registry"]

KeyWriter = Callable[..., str]


@pytest.fixture
def metrics() -> MaskingMetrics:
    return MaskingMetrics(CollectorRegistry())


@pytest.fixture
def secret_root(vault: Any) -> Iterator[str]:
    """A KV v2 prefix private to this test, deleted (all versions) afterwards."""
    root = f"cdc-test/masking/{uuid.uuid4().hex[:12]}"
    yield root
    try:
        names = vault.secrets.kv.v2.list_secrets(path=root)["data"]["keys"]
    except hvac.exceptions.InvalidPath:  # the test wrote nothing
        names = []
    for name in names:
        vault.secrets.kv.v2.delete_metadata_and_all_versions(path=f"{root}/{name}")


@pytest.fixture
def write_key(vault: Any, secret_root: str) -> KeyWriter:
    """Write ``field=<base64 key>`` as a new version of ``<secret_root>/<name>``; returns the path."""

    def write(name: str, key: bytes, field: str = "key", encode: bool = True) -> str:
        path = f"{secret_root}/{name}"
        value = base64.b64encode(key).decode() if encode else key.decode()
        vault.secrets.kv.v2.create_or_update_secret(path=path, secret={field: value})
        return path

    return write


@pytest.fixture
def vault_policy(vault: Any) -> Iterator[Callable[[str], str]]:
    """Create (or replace) a Vault policy from HCL; returns its name. Deleted afterwards."""
    names: list[str] = []
    name = f"masking-test-{uuid.uuid4().hex[:8]}"

    def put(hcl: str) -> str:
        vault.sys.create_or_update_policy(name=name, policy=hcl)
        names.append(name)
        return name

    yield put
    for created in set(names):
        vault.sys.delete_policy(name=created)


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """Put a Vault token in a fresh environment variable; returns the variable's name."""

    def put(token: str) -> str:
        name = f"MASKING_TEST_TOKEN_{os.getpid()}_{uuid.uuid4().hex[:6].upper()}"
        monkeypatch.setenv(name, token)
        return name

    return put


@pytest.fixture
def ts_schema(timescaledb_dsn: str) -> Iterator[str]:
    """A TimescaleDB schema private to the test, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:10]}"
    yield schema
    _drop_schema(timescaledb_dsn, schema)
