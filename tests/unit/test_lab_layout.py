"""The lab's pure decisions: token spacing, ports, node addresses."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from e2e.lab import cassandra
from e2e.lab.layout import Layout, Ports

pytestmark = pytest.mark.unit


def _layout(tmp_path: Path, offset: int = 0) -> Layout:
    ports = Ports(**{name: value + offset for name, value in vars(Ports()).items()})
    return Layout(root=tmp_path, cache=tmp_path / "cache", repo=tmp_path, ports=ports)


def test_node_one_keeps_its_token_whether_the_ring_has_one_node_or_three(tmp_path: Path) -> None:
    one = cassandra.nodes(_layout(tmp_path), 1)
    three = cassandra.nodes(_layout(tmp_path), 3)
    assert one[0].token == three[0].token == -(2**63)
    tokens = [n.token for n in three]
    assert tokens == sorted(tokens)
    gaps = {b - a for a, b in itertools.pairwise(tokens)}
    assert len(gaps) == 1, "tokens are evenly spaced"


def test_nodes_share_ports_on_their_own_loopback_address_but_not_jmx(tmp_path: Path) -> None:
    nodes = cassandra.nodes(_layout(tmp_path), 3)
    assert [n.address for n in nodes] == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert len({n.cql_port for n in nodes}) == 1
    assert len({n.jmx_port for n in nodes}) == 3, "JMX binds to 127.0.0.1 only, so each node needs its own port"


def test_a_port_offset_of_a_hundred_never_lands_on_another_labs_port(tmp_path: Path) -> None:
    def ports(layout: Layout) -> set[int]:
        p = layout.ports
        jmx = {p.cassandra_jmx_base + i for i in range(3)}
        return {v for k, v in vars(p).items() if k != "cassandra_jmx_base"} | jmx

    base = ports(_layout(tmp_path))
    for offset in range(100, 1000, 100):
        assert not base & ports(_layout(tmp_path, offset)), f"offset {offset} collides"


def test_status_keys_name_each_node_where_the_reader_finds_it(tmp_path: Path) -> None:
    described = cassandra.nodes(_layout(tmp_path), 1)[0].describe()
    assert {"address", "cql_port", "cdc_raw", "log"} <= described.keys()
    assert described["cdc_raw"].endswith("node1/cdc_raw")
