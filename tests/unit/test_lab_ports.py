"""Listener ports come from below the ephemeral range, free, and never twice."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from e2e.lab.ports import HIGH, LOW, free_port

pytestmark = pytest.mark.unit


def test_ports_are_free_outside_the_ephemeral_range_and_distinct() -> None:
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == len(ports)
    assert all(LOW <= p <= HIGH < ephemeral_low for p in ports)
    with socket.socket() as s:
        s.bind(("0.0.0.0", ports[0]))  # what a replicator does with it
