"""Session fixtures handing out connections to the lab's real services.

Integration tests ask for what they need; the first one to ask brings the lab up if it
is not running. A service that cannot start fails the run with its log: it never skips.
Unit tests ask for nothing and run without the lab.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from e2e.lab import cassandra, clickhouse
from e2e.lab.control import SERVICES, status, up
from e2e.lab.errors import LabError
from e2e.lab.layout import Layout
from e2e.lab.ports import free_port
from e2e.lab.postgres import Server, private_server

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# Property tests are deterministic (derandomized, no example database) and kept small so CI time
# stays bounded; HYPOTHESIS_PROFILE=thorough searches much further, for a run by hand.
settings.register_profile(
    "cdc",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=5,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", parent=settings.get_profile("cdc"), max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "cdc"))


@pytest.fixture(scope="session")
def lab_layout() -> Layout:
    return Layout.default()


@pytest.fixture(scope="session")
def lab(lab_layout: Layout) -> dict[str, Any]:
    """The lab's status report; starts the lab when something is not running."""
    lab_layout.root.mkdir(parents=True, exist_ok=True)
    try:
        report = status(lab_layout)
        if not report["ready"]:
            nodes = max(1, len(report["cassandra"]["nodes"]))
            report = up(lab_layout, SERVICES, nodes, None)
    except LabError as exc:
        pytest.fail(exc.describe(), pytrace=False)
    if not report["ready"]:
        pytest.fail(f"the lab is not ready: {report}", pytrace=False)
    return report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that grow the lab to three Cassandra nodes run last, so that tests which
    expect a single node (every partition on node 1) never share the ring with them."""
    items.sort(key=lambda item: item.get_closest_marker("multinode") is not None)


@pytest.fixture(scope="session")
def cassandra_cluster(lab_layout: Layout, lab: dict[str, Any]) -> list[dict[str, Any]]:
    """Three Cassandra nodes on 127.0.0.1-3, for replication: grows the lab if needed."""
    if len(lab["cassandra"]["nodes"]) < 3:
        try:
            cassandra.up(lab_layout, 3)
        except LabError as exc:
            pytest.fail(exc.describe(), pytrace=False)
    return [n.describe() for n in cassandra.running_nodes(lab_layout)]


@pytest.fixture(scope="session")
def cassandra_lz4_node(lab_layout: Layout, lab: dict[str, Any]) -> dict[str, Any]:
    """A one-node cluster of its own (127.0.0.11) writing LZ4-compressed version-8 segments."""
    try:
        node = cassandra.up_lz4(lab_layout)
    except LabError as exc:
        pytest.fail(exc.describe(), pytrace=False)
    return node.describe()


@pytest.fixture(scope="session")
def lz4_cql_session(cassandra_lz4_node: dict[str, Any]) -> Iterator[Any]:
    cluster = _cluster_for(cassandra_lz4_node)
    yield cluster.connect()
    cluster.shutdown()


def _cluster_for(node: dict[str, Any]) -> Any:
    """A driver cluster that talks to this one node only."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy

    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([node["address"]]), request_timeout=30)
    return Cluster(
        [node["address"]],
        port=node["cql_port"],
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )


@pytest.fixture(scope="session")
def cassandra_nodes(lab: dict[str, Any]) -> list[dict[str, Any]]:
    return list(lab["cassandra"]["nodes"])


@pytest.fixture(scope="session")
def cassandra_node(cassandra_nodes: list[dict[str, Any]]) -> dict[str, Any]:
    return cassandra_nodes[0]


@pytest.fixture(scope="session")
def replication(cassandra_nodes: list[dict[str, Any]]) -> str:
    """A CQL replication map that puts every partition on every running node.

    The lab runs one node or three; with this, a test can read any node's cdc_raw (node 1's,
    typically) and find every write, whichever ring it runs on.
    """
    return f"{{'class': 'SimpleStrategy', 'replication_factor': {len(cassandra_nodes)}}}"


@pytest.fixture(scope="session")
def cql_session(cassandra_node: dict[str, Any]) -> Iterator[Any]:
    cluster = _cluster_for(cassandra_node)
    yield cluster.connect()
    cluster.shutdown()


@pytest.fixture(scope="session")
def postgres_dsn(lab: dict[str, Any]) -> str:
    return str(lab["postgres"]["dsn"])


@pytest.fixture(scope="session")
def timescaledb_dsn(lab: dict[str, Any]) -> str:
    return str(lab["timescaledb"]["dsn"])


@pytest.fixture
def private_postgres(lab_layout: Layout) -> Iterator[Callable[..., Server]]:
    """Makes throwaway PostgreSQL servers of the lab's build (TimescaleDB preloaded), for tests that
    stop a server or change its settings (TLS); each is purged at the end of the test.

    ``make(name, conf="", hba="")``: ``conf`` lines are appended to postgresql.conf and ``hba``
    lines put first in pg_hba.conf; call ``start()`` on the result."""
    made: list[Server] = []

    def make(name: str, conf: str = "", hba: str = "") -> Server:
        server = private_server(lab_layout, f"{name}-{uuid.uuid4().hex[:6]}", free_port(), conf, hba)
        made.append(server)
        return server

    yield make
    for server in made:
        server.purge()


@pytest.fixture(scope="session")
def clickhouse_server(lab: dict[str, Any]) -> dict[str, Any]:
    """The lab's ClickHouse server: ``url``, ``user``, ``password``, ``version``, ports."""
    return dict(lab["clickhouse"])


@pytest.fixture
def private_clickhouse(lab_layout: Layout) -> Iterator[Callable[[str], clickhouse.Server]]:
    """Makes throwaway ClickHouse servers of the lab's build, for tests that stop a server mid-run;
    ``make(name)`` returns one not yet started (``start()``); each is purged at the end of the test."""
    made: list[clickhouse.Server] = []

    def make(name: str) -> clickhouse.Server:
        server = clickhouse.private_server(lab_layout, f"{name}-{uuid.uuid4().hex[:6]}", free_port(), free_port())
        made.append(server)
        return server

    yield make
    for server in made:
        server.purge()


@pytest.fixture(scope="session")
def clickhouse_client(lab: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A chDB-backed clickhouse-connect client on a path private to this test session.

    chDB locks its data path per process, so tests keep off the lab's shared default path
    (which the demo may hold open).
    """
    import clickhouse_connect

    path: Path = tmp_path_factory.mktemp("chdb")
    client = clickhouse_connect.get_client(interface="chdb", dsn=f"chdb://{path}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def vault(lab: dict[str, Any]) -> Any:
    import hvac

    client = hvac.Client(url=lab["openbao"]["addr"], token=lab["openbao"]["token"])
    assert client.is_authenticated()
    return client


@pytest.fixture(scope="session")
def kube_api(lab: dict[str, Any]) -> Iterator[Any]:
    from kubernetes import config

    api = config.new_client_from_config(config_file=lab["kubernetes"]["kubeconfig"])
    yield api
    api.close()


@pytest.fixture
def kube_namespace(kube_api: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (the controller-manager finishes it)."""
    from kubernetes import client

    core = client.CoreV1Api(kube_api)
    # A DNS label: parametrized ids bring brackets and dots, and a rerun must not collide.
    slug = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:40].strip("-")
    name = f"t-{slug}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)
