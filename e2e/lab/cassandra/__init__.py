"""Apache Cassandra 5.0 nodes with CDC enabled, on loopback addresses 127.0.0.1, .2, .3.

Maven Central does not carry the binary tarball past 4.0-alpha2, so the lab resolves
``cassandra-all`` and its runtime dependencies there (``cassandra/pom.xml``) into a
``lib/`` directory and launches ``CassandraDaemon`` with the JVM options Cassandra's own
``conf/jvm17-server.options`` prescribes. Several nodes share one machine as ccm does:
one loopback address each, the same CQL and storage ports, a private JMX port each.

The package: ``jvm`` (the JVM options), ``node`` (a node's places, ports and cassandra.yaml),
this module (installing, starting, stopping, probing) and ``pom.xml`` (what Maven resolves).
"""

from __future__ import annotations

import shutil
import ssl
import time
from functools import partial
from pathlib import Path
from typing import Any

from e2e.lab import procs
from e2e.lab.cassandra.jvm import JVM17_CLIENT_OPTIONS, JVM17_OPTIONS
from e2e.lab.cassandra.node import LOGBACK, ClientTls, Node, render_yaml
from e2e.lab.errors import LabError
from e2e.lab.layout import CASSANDRA_VERSION, Layout

__all__ = [
    "MARKER",
    "SERVICE",
    "TLS_NODES",
    "ClientTls",
    "Node",
    "client_ssl_context",
    "down",
    "down_tls",
    "existing_nodes",
    "install",
    "is_running",
    "lz4_node",
    "nodes",
    "nodetool",
    "release_old_segments",
    "running_nodes",
    "tls_node",
    "up",
    "up_lz4",
    "up_tls",
    "version",
]

SERVICE = "cassandra"
MARKER = "org.apache.cassandra.service.CassandraDaemon"


def nodes(layout: Layout, count: int) -> list[Node]:
    # Evenly spaced single tokens, spaced for at least three nodes so node 1 keeps its
    # token whether the lab runs one node or three.
    spacing = 2**64 // max(count, 3)
    return [
        Node(
            index=i,
            root=layout.root / "cassandra" / f"node{i + 1}",
            cql_port=layout.ports.cassandra_cql,
            storage_port=layout.ports.cassandra_storage,
            jmx_port=layout.ports.cassandra_jmx_base + i,
            token=-(2**63) + i * spacing,
        )
        for i in range(count)
    ]


def install(layout: Layout) -> Path:
    """Resolves Cassandra's jars from Maven Central once per version."""
    lib = layout.cassandra_home / "lib"
    jar = lib / f"cassandra-all-{CASSANDRA_VERSION}.jar"
    if jar.exists():
        return lib
    print(f"lab: fetching Cassandra {CASSANDRA_VERSION} from Maven Central (first time only)", flush=True)
    staging = layout.cassandra_home / "lib.partial"
    shutil.rmtree(staging, ignore_errors=True)
    procs.run(
        [
            "mvn",
            "-q",
            "-B",
            "dependency:copy-dependencies",
            f"-Dcassandra.version={CASSANDRA_VERSION}",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
            f"-Dmaven.repo.local={layout.cache / 'm2'}",
        ],
        SERVICE,
        cwd=layout.repo / "e2e" / "lab" / "cassandra",
    )
    staging.rename(lib)
    return lib


def _command(layout: Layout, node: Node, lib: Path, heap: str) -> list[str]:
    conf = node.root / "conf"
    jamm = next(lib.glob("jamm-*.jar"))
    return [
        "java",
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-Xss256k",
        f"-javaagent:{jamm}",
        *JVM17_OPTIONS,
        f"-Dcassandra.config=file://{conf / 'cassandra.yaml'}",
        f"-Dlogback.configurationFile=file://{conf / 'logback.xml'}",
        f"-Dcassandra.logdir={node.root / 'logs'}",
        f"-Dcassandra.storagedir={node.root}",
        "-Dcassandra-foreground=yes",
        f"-Dcassandra.jmx.local.port={node.jmx_port}",
        # Nothing to gossip about in a fresh lab cluster: skip the waits meant for production rings.
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        "-Dcassandra.superuser_setup_delay_ms=0",
        "-Dcassandra.ring_delay_ms=1000",
        "-cp",
        f"{conf}:{lib}/*",
        MARKER,
    ]


def _cluster(node: Node) -> Any:
    """A driver cluster that talks to this node only, never to its peers."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile  # noqa: PLC0415 - heavy
    from cassandra.policies import WhiteListRoundRobinPolicy  # noqa: PLC0415

    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([node.address]), request_timeout=10)
    return Cluster(
        [node.address],
        port=node.cql_port,
        connect_timeout=3,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        ssl_context=client_ssl_context(node.client_tls),
    )


def client_ssl_context(tls: ClientTls | None) -> ssl.SSLContext | None:
    """What a driver needs to reach a node with client encryption: its CA, and a client certificate."""
    if tls is None:
        return None
    context = ssl.create_default_context(cafile=tls.ca)
    context.load_cert_chain(tls.client_cert, tls.client_key)
    return context


def _cql_ready(node: Node, peers: int) -> bool:
    cluster = _cluster(node)
    try:
        session = cluster.connect()
        up_peers = session.execute("SELECT peer FROM system.peers_v2").all()
        return len(up_peers) >= peers
    finally:
        cluster.shutdown()


def is_running(node: Node) -> bool:
    return procs.running_pid(node.pidfile, MARKER) is not None


def existing_nodes(layout: Layout) -> int:
    """How many nodes this lab's ring has ever had: their data directories remain."""
    return sum(1 for node in nodes(layout, 9) if (node.root / "data").exists())


def up(layout: Layout, count: int, heap: str | None = None) -> list[Node]:
    lib = install(layout)
    # A ring once grown keeps its members: starting fewer would leave their token ranges
    # unavailable. Only `down --purge` shrinks the lab back to one node.
    count = max(count, existing_nodes(layout))
    heap = heap or ("1024M" if count == 1 else "768M")
    wanted = nodes(layout, count)
    seeds = f"{wanted[0].address}:{wanted[0].storage_port}"
    for node in wanted:
        # One at a time, as ccm does: concurrent joins race for the ring.
        _start(layout, node, lib, heap, seeds, peers=node.index)
    for node in wanted:
        release_old_segments(node)
    for node in wanted:
        procs.wait_until(
            partial(_cql_ready, node, count - 1),
            service=f"{SERVICE} {node.address}",
            what=f"{count - 1} peers in system.peers_v2",
            timeout=120,
            log=node.log,
        )
    return wanted


def release_old_segments(node: Node, older_than_s: float = 1800) -> int:
    """Deletes the node's finished CDC segments untouched for ``older_than_s``, as a consumer would.

    Nothing in the lab consumes cdc_raw for good (tests and benchmarks read copies or stop early),
    and Cassandra counts a whole 32 MiB per segment against ``cdc_total_space``: a lab kept across
    many runs would fill it, and Cassandra would then reject every write to a CDC table. Only
    segments whose ``_cdc.idx`` says COMPLETED go, the log before its index (as the replicator
    does), and only old ones: a test running beside this reads from its own start, minutes ago.
    """
    released = 0
    cutoff = time.time() - older_than_s
    for idx in sorted(node.cdc_raw.glob("CommitLog-*_cdc.idx")):
        try:
            completed = "COMPLETED" in idx.read_text()
            old = idx.stat().st_mtime < cutoff
        except OSError:
            continue  # Cassandra replaced or removed it meanwhile
        if not (completed and old):
            continue
        idx.with_name(idx.name.removesuffix("_cdc.idx") + ".log").unlink(missing_ok=True)
        idx.unlink(missing_ok=True)
        released += 1
    if released:
        print(f"lab: released {released} finished CDC segments older than {older_than_s:.0f}s on {node.address}")
    return released


def _start(layout: Layout, node: Node, lib: Path, heap: str, seeds: str, *, peers: int) -> None:
    if is_running(node):
        return
    for sub in ("conf", "data", "commitlog", "cdc_raw", "saved_caches", "hints", "logs"):
        (node.root / sub).mkdir(parents=True, exist_ok=True)
    (node.root / "conf" / "cassandra.yaml").write_text(render_yaml(node, seeds))
    (node.root / "conf" / "logback.xml").write_text(LOGBACK)
    print(f"lab: starting Cassandra {node.name or node.address} on {node.address}:{node.cql_port}", flush=True)
    procs.start(_command(layout, node, lib, heap), node.pidfile, node.stdout_log, MARKER)
    procs.wait_until(
        partial(_cql_ready, node, peers),
        service=f"{SERVICE} {node.address}",
        what="a CQL query",
        timeout=180,
        log=[node.stdout_log, node.log],
        alive=partial(is_running, node),
    )


def lz4_node(layout: Layout) -> Node:
    """A single-node cluster of its own writing LZ4-compressed, descriptor-version-8 segments.

    The ring's nodes keep Cassandra 5.0's defaults (plain version 7); this one proves the
    reader on the other format Cassandra writes. It starts only when asked for.
    """
    return Node(
        index=10,
        root=layout.root / "cassandra" / "lz4",
        cql_port=layout.ports.cassandra_cql,
        storage_port=layout.ports.cassandra_storage,
        jmx_port=layout.ports.cassandra_jmx_base + 10,
        token=0,
        name="lz4",
        cluster_name="cdc-lab-lz4",
        extra_yaml=(
            "commitlog_compression:\n  - class_name: LZ4Compressor\n"
            # NONE drops the 4.x-compatible format: commitlog descriptors become version 8.
            "storage_compatibility_mode: NONE\n"
        ),
    )


def up_lz4(layout: Layout) -> Node:
    lib = install(layout)
    node = lz4_node(layout)
    release_old_segments(node)
    _start(layout, node, lib, "512M", f"{node.address}:{node.storage_port}", peers=0)
    return node


TLS_NODES = {"tls": 11, "tls12": 12}
"""On-demand nodes with client encryption, by name: index 11 is 127.0.0.12, 12 is 127.0.0.13."""


def tls_node(layout: Layout, tls: ClientTls | None = None, name: str = "tls") -> Node:
    """A single-node cluster of its own (``tls``: 127.0.0.12, ``tls12``: 127.0.0.13) that accepts CQL
    only over TLS with a client certificate, from PEM files a test generates. Started on demand."""
    index = TLS_NODES[name]
    return Node(
        index=index,
        root=layout.root / "cassandra" / name,
        cql_port=layout.ports.cassandra_cql,
        storage_port=layout.ports.cassandra_storage,
        jmx_port=layout.ports.cassandra_jmx_base + index,
        token=0,
        name=name,
        cluster_name=f"cdc-lab-{name}",
        client_tls=tls,
    )


def up_tls(layout: Layout, tls: ClientTls, name: str = "tls") -> Node:
    """Starts a TLS node afresh with ``tls``: a node left running holds another run's certificates."""
    lib = install(layout)
    down_tls(layout, name)
    node = tls_node(layout, tls, name)
    _start(layout, node, lib, "512M", f"{node.address}:{node.storage_port}", peers=0)
    return node


def down_tls(layout: Layout, name: str = "tls", *, purge: bool = False) -> None:
    node = tls_node(layout, name=name)
    if procs.stop(node.pidfile, MARKER, timeout=60):
        print(f"lab: stopped Cassandra {node.address}", flush=True)
    if purge:
        shutil.rmtree(node.root, ignore_errors=True)


def running_nodes(layout: Layout) -> list[Node]:
    found = []
    for node in nodes(layout, 9):
        if node.root.exists() and is_running(node):
            found.append(node)
    return found


def down(layout: Layout) -> None:
    for node in [*(tls_node(layout, name=n) for n in TLS_NODES), lz4_node(layout), *reversed(nodes(layout, 9))]:
        if procs.stop(node.pidfile, MARKER, timeout=60):
            print(f"lab: stopped Cassandra {node.address}", flush=True)


def version(node: Node) -> str:
    cluster = _cluster(node)
    try:
        row = cluster.connect().execute("SELECT release_version FROM system.local").one()
        return str(row.release_version)
    finally:
        cluster.shutdown()


def nodetool(layout: Layout, node: Node, *args: str) -> str:
    """Cassandra's own nodetool, run from the same jars over the node's local JMX port."""
    lib = layout.cassandra_home / "lib"
    if not lib.exists():
        raise LabError(SERVICE, "Cassandra is not installed; run `python -m e2e.lab up` first")
    return procs.run(
        [
            "java",
            "-Xmx256m",
            *JVM17_CLIENT_OPTIONS,
            "-cp",
            f"{lib}/*",
            "-Dcassandra.storagedir=/tmp",
            "org.apache.cassandra.tools.NodeTool",
            "-h",
            "127.0.0.1",
            "-p",
            str(node.jmx_port),
            *args,
        ],
        f"nodetool {node.address}",
        timeout=120,
    )
