"""Ports for listeners that tests, the demo and the benchmarks start (replicators' /metrics,
operators, private PostgreSQL servers).

Asking the kernel for port 0 and handing that number to a process started later is a race: the
number comes from the ephemeral range (``ip_local_port_range``, 32768-60999 here), and any
outgoing connection (the Cassandra driver, asyncpg, a replicator's own) may take it before the
listener binds. A CI run failed that way. Ports are therefore drawn from below that range and
above every lab port (shifted by ``CDC_LAB_PORT_OFFSET`` at most 900), checked free, and never
handed out twice by one process.
"""

from __future__ import annotations

import random
import socket

LOW, HIGH = 30000, 32767
_given: set[int] = set()


def _bindable(port: int) -> bool:
    for host in ("127.0.0.1", "0.0.0.0"):  # noqa: S104 - replicators listen on every address
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_port() -> int:
    """A port no one listens on now, outside the ephemeral range, not given out before here."""
    for _ in range(200):
        port = random.randint(LOW, HIGH)  # noqa: S311 - spreading, not secrecy
        if port not in _given and _bindable(port):
            _given.add(port)
            return port
    raise RuntimeError(f"no free port in {LOW}-{HIGH}")
