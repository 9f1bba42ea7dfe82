"""Fixtures shared by the commitlog integration tests (import them into a test module)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cdc_replicator.schema.registry import SchemaRegistry

from tests.integration.commitlog.helpers import create_keyspace, drop_keyspaces, registry_for, unique_keyspace


@pytest.fixture(scope="module")
def cdc_raw(cassandra_node: dict[str, Any]) -> Path:
    return Path(cassandra_node["cdc_raw"])


@pytest.fixture(scope="module")
def keyspace(cql_session: Any, cassandra_nodes: list[dict[str, Any]], request: pytest.FixtureRequest) -> Iterator[str]:
    """A keyspace replicated to every node, so node 1's commitlog sees every write; dropped after."""
    name = unique_keyspace(request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_"))
    create_keyspace(cql_session, name, len(cassandra_nodes))
    yield name
    drop_keyspaces(cql_session, name)


@pytest.fixture
def registry(cql_session: Any) -> SchemaRegistry:
    return registry_for(cql_session)
