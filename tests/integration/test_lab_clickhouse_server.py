"""The lab's ClickHouse server: ClickHouse 26.7 over HTTP, the lab's user and password required,
data kept across a restart."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from typing import Any

import clickhouse_connect
import pytest

from e2e.lab import clickhouse

pytestmark = pytest.mark.integration


def _client(server: dict[str, Any], password: str | None = None) -> Any:
    return clickhouse_connect.get_client(
        host="127.0.0.1", port=server["http_port"], username=server["user"],
        password=server["password"] if password is None else password,
    )  # fmt: skip


def test_the_server_answers_the_lab_user_over_http_and_listens_on_tcp(clickhouse_server: dict[str, Any]) -> None:
    client = _client(clickhouse_server)
    try:
        assert client.query("SELECT currentUser(), version()").result_rows == [("cdc", clickhouse_server["version"])]
    finally:
        client.close()
    assert clickhouse_server["version"].startswith("26.7.")
    assert clickhouse_server["url"] == f"http://127.0.0.1:{clickhouse_server['http_port']}"
    with socket.create_connection(("127.0.0.1", clickhouse_server["tcp_port"]), timeout=5):
        pass  # the native protocol's port accepts connections too


def test_a_wrong_password_is_refused(clickhouse_server: dict[str, Any], lab_layout: Any) -> None:
    with pytest.raises(clickhouse.ClickHouseError) as refused:
        clickhouse.lab_server(lab_layout).query("SELECT 1", password="not-the-password")
    assert "AUTHENTICATION_FAILED" in refused.value.text
    with pytest.raises(Exception, match=r"Authentication failed"):
        _client(clickhouse_server, password="not-the-password")


def test_without_credentials_no_table_is_readable(clickhouse_server: dict[str, Any], lab_layout: Any) -> None:
    """No credentials means ClickHouse's ``default`` user, which clickhouse local's own session
    needs: it is confined to SYSTEM LISTEN and ``system.numbers`` (see e2e/lab/clickhouse/server.py)."""
    server = clickhouse.lab_server(lab_layout)
    database = f"t_{uuid.uuid4().hex[:10]}"
    server.query(f"CREATE DATABASE {database}")
    try:
        server.query(f"CREATE TABLE {database}.secret (id UInt32) ENGINE = MergeTree ORDER BY id")
        server.query(f"INSERT INTO {database}.secret VALUES (1)")
        for sql in (f"SELECT * FROM {database}.secret", f"INSERT INTO {database}.secret VALUES (2)",
                    f"DROP TABLE {database}.secret"):  # fmt: skip
            with pytest.raises(clickhouse.ClickHouseError) as refused:
                server.query(sql, user="default", password="")
            assert "ACCESS_DENIED" in refused.value.text, refused.value.text
        shown = server.query("SHOW DATABASES", user="default", password="")
        assert database not in shown
        assert server.query(f"SELECT count() FROM {database}.secret").strip() == "1"
    finally:
        server.query(f"DROP DATABASE {database}")


def test_data_survives_a_restart(private_clickhouse: Callable[[str], clickhouse.Server]) -> None:
    server = private_clickhouse("restart")
    server.start()
    server.query("CREATE DATABASE kept")
    server.query("CREATE TABLE kept.t (id UInt32, v String) ENGINE = ReplacingMergeTree ORDER BY id")
    server.query("INSERT INTO kept.t VALUES (1, 'one'), (2, 'two')")
    assert server.stop()
    assert not server.is_running()
    server.start()
    assert server.query("SELECT id, v FROM kept.t FINAL ORDER BY id FORMAT CSV") == '1,"one"\n2,"two"\n'
