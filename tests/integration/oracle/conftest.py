"""Fixtures for the oracle tests: Cassandra itself decides every order the project must reproduce."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cdc_replicator.events import ChangeEvent
from cdc_replicator.schema.registry import SchemaRegistry

from tests.integration.commitlog.helpers import read_events, registry_for, run, start_position

_partitions = itertools.count(1)


@dataclass
class Lab:
    session: Any
    registry: SchemaRegistry
    cdc_raw: Path
    replication: str

    def partition(self) -> int:
        return next(_partitions)

    def write(self, keyspace: str, statements: list[str]) -> list[ChangeEvent]:
        """Run ``statements`` and return the events of ``keyspace`` they left in node 1's commitlog."""
        after = start_position(self.cdc_raw)
        for statement in statements:
            run(self.session, statement)
        return read_events(self.cdc_raw, self.registry, keyspace, after, include=lambda t: t.cdc)


@pytest.fixture(scope="module")
def oracle_lab(cql_session: Any, cassandra_node: dict[str, Any], replication: str) -> Lab:
    return Lab(cql_session, registry_for(cql_session), Path(cassandra_node["cdc_raw"]), replication)
