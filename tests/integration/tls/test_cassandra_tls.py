"""TLS against the lab's real servers, with certificates from CAs this session generates.

Cassandra: a one-node cluster of its own (127.0.0.12) that takes CQL only over TLS with a
client certificate, and another (127.0.0.13) that offers TLS 1.2 only. PostgreSQL: private
servers that take TCP connections only over TLS (``hostssl``). The replicator runs as
``cdc-replicator run`` with TLS 1.3 as its minimum: it replicates from one into the other; a
server offering only TLS 1.2 (Postgres and Cassandra), a server from another CA (both) and a
certificate for another name (Postgres) are each refused with the endpoint and the reason, in
its log and in /health.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cassandra.cluster import Cluster
from cdc_replicator.contract.config import Tls
from cdc_replicator.schema.registry import SchemaRegistry
from cdc_replicator.tls import client_context

from e2e.lab.postgres import PASSWORD, USER, Server
from tests.integration.commitlog.helpers import registry_for, run, unique_keyspace
from tests.integration.commitlog.model import select_all
from tests.integration.commitlog.workload import Workload, schema_statements
from tests.integration.replicator.helpers import diff, expected_rows, view_rows
from tests.integration.replicator.process import (
    Replicator,
    free_port,
    positions,
    read_checkpoint,
    wait_until,
    write_config,
)
from tests.integration.tls.conftest import Pki

pytestmark = pytest.mark.integration

DATABASE = "cdc_tls"
DATABASE_TS = "cdc_tls_ts"
SCHEMA = "tls"


@pytest.fixture(scope="module")
def tls_session(cassandra_tls_node: dict[str, Any], pki: Pki) -> Iterator[Any]:
    """The test's own CQL session to the TLS node, capped at TLS 1.2 so that the node's client list
    tells its connections apart from the replicator's (which must be TLS 1.3)."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy

    context = ssl.create_default_context(cafile=pki.ca)
    context.load_cert_chain(pki.client_cert, pki.client_key)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    address = cassandra_tls_node["address"]
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([address]), request_timeout=30)
    cluster = Cluster(
        [address],
        port=cassandra_tls_node["cql_port"],
        protocol_version=5,
        ssl_context=context,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )
    yield cluster.connect()
    cluster.shutdown()


@pytest.fixture(scope="module")
def tls_registry(tls_session: Any) -> SchemaRegistry:
    return registry_for(tls_session)


@pytest.fixture(scope="module")
def keyspace(tls_session: Any) -> str:
    """A keyspace of the workload's tables, written once for the module."""
    name = unique_keyspace("tls")
    replication = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    run(tls_session, f"CREATE KEYSPACE {name} WITH replication = {replication}")
    for statement in schema_statements(name):
        run(tls_session, statement)
    for statement in Workload(name, 5, 120, alter_at=60).statements():
        run(tls_session, statement)
    return name


def _tls(pki: Pki, *, client_cert: bool = False, min_version: str = "1.3") -> dict[str, Any]:
    tls: dict[str, Any] = {"caFile": str(pki.ca), "minVersion": min_version}
    if client_cert:
        tls |= {"certFile": str(pki.client_cert), "keyFile": str(pki.client_key)}
    return tls


def _config(
    tmp: Path, node: dict[str, Any], keyspace: str, server: Server, port: int, source_tls: dict[str, Any],
    destination_tls: dict[str, Any], *, timescaledb: bool = False,
) -> Path:  # fmt: skip
    destinations = [
        {
            "name": "pg",
            "type": "postgres",
            "endpoint": f"127.0.0.1:{server.port}",
            "database": DATABASE,
            "targetSchema": SCHEMA,
            "credentials": {"usernameEnv": "PG_USER", "passwordEnv": "PG_PASSWORD"},
            "tls": destination_tls,
        }
    ]
    if timescaledb:
        destinations.append({**destinations[0], "name": "ts", "type": "timescaledb", "database": DATABASE_TS})
    return write_config(
        tmp / "config.yaml",
        pipeline="test/tls",
        source={
            "nodeName": "tls",
            "cdcRawPath": node["cdc_raw"],
            "contactPoints": [f"{node['address']}:{node['cql_port']}"],
            "keyspaces": [keyspace],
            "deleteConsumedSegments": False,
            "tls": source_tls,
        },
        destinations=destinations,
        checkpoint={"path": str(tmp / "checkpoint.json"), "intervalSeconds": 0.5},
        tuning={"batchMaxWaitSeconds": 0.2, "pollIntervalSeconds": 0.2, "retryInitialSeconds": 0.2,
                "retryMaxSeconds": 2.0},
        observability={"metricsPort": port},
    )  # fmt: skip


def _replicator(config: Path, tmp: Path) -> Replicator:
    return Replicator(config, {"PG_USER": USER, "PG_PASSWORD": PASSWORD}, tmp)


def _health(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
    except (urllib.error.URLError, OSError):
        return None
    data: dict[str, Any] = json.loads(body)
    return data


def _dependency_error(port: int, name: str) -> str:
    health = _health(port)
    if health is None:
        return ""
    return str(health["dependencies"].get(name, {}).get("last_error") or "")


def _pg_problems(server: Server, session: Any, registry: SchemaRegistry, keyspace: str, ca: Path) -> list[str]:
    registry.refresh(force=True)
    tables = [t for t in registry.tables() if t.keyspace == keyspace and t.cdc]

    async def go() -> list[str]:
        # Over TLS too: the server takes nothing else on TCP.
        conn = await asyncpg.connect(server.dsn(DATABASE), ssl=ssl.create_default_context(cafile=ca))
        try:
            problems = []
            for table in tables:
                try:
                    actual = await view_rows(conn, SCHEMA, table)
                except asyncpg.UndefinedTableError:
                    actual = {}
                problems += diff(table.name, expected_rows(table, select_all(session, table)), actual)
            return problems
        finally:
            await conn.close()

    return asyncio.run(go())


def _same_position(checkpoint: Path, *names: str) -> bool:
    found = positions(read_checkpoint(checkpoint))
    return found.get(names[0]) is not None and all(found.get(n) == found[names[0]] for n in names)


def test_replicates_from_tls_cassandra_into_tls_postgres_and_timescaledb_over_tls_1_3(
    tmp_path: Path, cassandra_tls_node: dict[str, Any], tls_session: Any, tls_registry: SchemaRegistry,
    keyspace: str, tls_postgres: Callable[..., Server], pki: Pki,
) -> None:  # fmt: skip
    server = tls_postgres(pki)
    server.create_database(DATABASE)
    server.create_database(DATABASE_TS, timescaledb=True)
    port = free_port()
    both = _tls(pki, client_cert=True)
    config = _config(tmp_path, cassandra_tls_node, keyspace, server, port, both, both, timescaledb=True)
    replicator = _replicator(config, tmp_path)
    replicator.start()
    try:
        wait_until(
            lambda: not _pg_problems(server, tls_session, tls_registry, keyspace, pki.ca),
            180,
            "convergence",
            replicator.logs,
        )
        # TimescaleDB (change history) is at the same position as Postgres once both are done.
        checkpoint = tmp_path / "checkpoint.json"
        wait_until(lambda: _same_position(checkpoint, "pg", "ts"), 60, "ts at pg's position", replicator.logs)
        assert server.psql(DATABASE_TS, f"SELECT count(*) > 0 FROM pg_tables WHERE schemaname = '{SCHEMA}'") == "t"
        # Every TCP connection the server holds (the replicator's: the test's own are closed) is TLS
        # 1.3, although the server allows 1.2: 1.3 is what the replicator asked for.
        versions = server.psql(
            "postgres",
            "SELECT string_agg(DISTINCT coalesce(s.version, 'none'), ',') FROM pg_stat_ssl s JOIN pg_stat_activity a "
            f"USING (pid) WHERE a.client_addr IS NOT NULL AND a.datname IN ('{DATABASE}', '{DATABASE_TS}')",
        )
        assert versions == "TLSv1.3"
        # The node sees the replicator over TLS 1.3 (the test's own session is capped at 1.2).
        clients = tls_session.execute("SELECT ssl_enabled, ssl_protocol FROM system_views.clients").all()
        assert clients
        assert all(c.ssl_enabled for c in clients)
        assert "TLSv1.3" in {c.ssl_protocol for c in clients}
        health = _health(port)
        assert health is not None
        assert health["dependencies"]["pg"]["status"] == "up", health
        assert health["dependencies"]["ts"]["status"] == "up", health
        assert health["dependencies"]["cassandra"]["status"] == "up", health
    finally:
        code = replicator.stop()
    assert code == 0, replicator.logs()
    assert not _pg_problems(server, tls_session, tls_registry, keyspace, pki.ca)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("tls-1.2-only", "protocol too old: the server offers no TLS version at or above the minimum 1.3"),
        ("wrong-ca", "unknown CA"),
        ("name-mismatch", "name mismatch"),
    ],
)
def test_postgres_refused_with_endpoint_and_reason(
    tmp_path: Path, cassandra_tls_node: dict[str, Any], keyspace: str, tls_postgres: Callable[..., Server],
    pki: Pki, other_pki: Pki, misnamed_pki: Pki, case: str, reason: str,
) -> None:  # fmt: skip
    server_pki, max_version, trusted = {
        "tls-1.2-only": (pki, "TLSv1.2", pki),
        "wrong-ca": (pki, None, other_pki),
        "name-mismatch": (misnamed_pki, None, pki),
    }[case]
    server = tls_postgres(server_pki, max_version=max_version)
    server.create_database(DATABASE)
    port = free_port()
    config = _config(tmp_path, cassandra_tls_node, keyspace, server, port, _tls(pki, client_cert=True), _tls(trusted))
    replicator = _replicator(config, tmp_path)
    replicator.start()
    expected = f"TLS to 127.0.0.1:{server.port} failed: {reason}"
    try:
        wait_until(lambda: expected in _dependency_error(port, "pg"), 120, f"/health: {expected!r}", replicator.logs)
        assert replicator.alive()
    finally:
        code = replicator.stop()
    assert code == 0, replicator.logs()
    logs = replicator.logs()
    assert expected in logs
    assert PASSWORD not in logs
    # Nothing reached the server: the database has no table of ours.
    assert server.psql(DATABASE, f"SELECT count(*) FROM pg_tables WHERE schemaname = '{SCHEMA}'") == "0"


def _refused_by_cassandra(config: dict[str, Any], tmp_path: Path, port: int, expected: str) -> None:
    """Runs the replicator until /health's cassandra entry reports ``expected``; it must then stop
    cleanly and have logged the same words."""
    replicator = _replicator(config, tmp_path)
    replicator.start()
    try:
        wait_until(
            lambda: expected in _dependency_error(port, "cassandra"), 120, f"/health: {expected!r}", replicator.logs
        )
    finally:
        code = replicator.stop()
    assert code == 0, replicator.logs()
    assert expected in replicator.logs()


def test_cassandra_from_another_ca_refused_with_endpoint_and_reason(
    tmp_path: Path, cassandra_tls_node: dict[str, Any], keyspace: str, tls_postgres: Callable[..., Server],
    pki: Pki, other_pki: Pki,
) -> None:  # fmt: skip
    server = tls_postgres(pki)
    port = free_port()
    source_tls = _tls(other_pki, client_cert=True)
    config = _config(tmp_path, cassandra_tls_node, keyspace, server, port, source_tls, _tls(pki))
    node = f"{cassandra_tls_node['address']}:{cassandra_tls_node['cql_port']}"
    _refused_by_cassandra(config, tmp_path, port, f"TLS to {node} failed: unknown CA")


def test_cassandra_offering_only_tls_1_2_refused_when_1_3_is_required(
    tmp_path: Path, cassandra_tls12_node: dict[str, Any], tls_postgres: Callable[..., Server], pki: Pki
) -> None:
    server = tls_postgres(pki)
    port = free_port()
    # No keyspace of ours on this node: the connection must fail before the schema matters.
    source_tls = _tls(pki, client_cert=True)
    config = _config(tmp_path, cassandra_tls12_node, "tls_none", server, port, source_tls, _tls(pki))
    node = f"{cassandra_tls12_node['address']}:{cassandra_tls12_node['cql_port']}"
    expected = f"TLS to {node} failed: protocol too old: the server offers no TLS version at or above the minimum 1.3"
    _refused_by_cassandra(config, tmp_path, port, expected)
    # The same node takes the same client when it accepts TLS 1.2: the refusal was the version alone.
    relaxed = client_context(
        Tls(ca_file=str(pki.ca), cert_file=str(pki.client_cert), key_file=str(pki.client_key), min_version="1.2"), node
    )
    cluster = Cluster([cassandra_tls12_node["address"]], port=cassandra_tls12_node["cql_port"], protocol_version=5,
                      ssl_context=relaxed)  # fmt: skip
    try:
        row = cluster.connect().execute("SELECT cluster_name FROM system.local").one()
    finally:
        cluster.shutdown()
    assert row.cluster_name == "cdc-lab-tls12"


@pytest.mark.parametrize("side", ["source", "destination"])
def test_an_unloadable_ca_file_stops_run_with_exit_2_naming_the_file(
    tmp_path: Path, cassandra_tls_node: dict[str, Any], keyspace: str, tls_postgres: Callable[..., Server],
    pki: Pki, side: str,
) -> None:  # fmt: skip
    """Retrying cannot make a missing file appear: the replicator stops at once and says which."""
    server = tls_postgres(pki)
    server.create_database(DATABASE)
    missing = str(tmp_path / "missing-ca.pem")
    source_tls, destination_tls = _tls(pki, client_cert=True), _tls(pki)
    (source_tls if side == "source" else destination_tls)["caFile"] = missing
    config = _config(tmp_path, cassandra_tls_node, keyspace, server, free_port(), source_tls, destination_tls)
    replicator = _replicator(config, tmp_path)
    replicator.start()
    assert replicator.wait(120) == 2
    assert f"cannot load caFile {missing}: No such file or directory" in replicator.logs()
