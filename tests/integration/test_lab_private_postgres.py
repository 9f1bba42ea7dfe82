"""A private PostgreSQL server: starts, survives a stop and start with its data, and is purged."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from e2e.lab.postgres import Server

pytestmark = pytest.mark.integration


def test_private_server_keeps_its_data_across_a_restart(private_postgres: Callable[..., Server]) -> None:
    server = private_postgres("smoke")
    server.start()
    server.create_database("smoke", timescaledb=True)
    server.psql("smoke", "CREATE TABLE t (x int); INSERT INTO t VALUES (42)")
    server.stop()
    assert not server.is_running()
    server.start()
    assert server.psql("smoke", "SELECT x FROM t") == "42"
    assert server.psql("smoke", "SELECT extname FROM pg_extension WHERE extname = 'timescaledb'") == "timescaledb"
