"""Endpoints as the config and the command line write them: where a host and its port are.

One reading for every endpoint the replicator is given: CQL contact points, Postgres and
TimescaleDB ``host:port``, ClickHouse URLs, ``dump --cassandra``.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def host_port(endpoint: str, default_port: int) -> tuple[str, int]:
    """``(host, port)`` of ``host``, ``host:port``, ``[v6]``, ``[v6]:port``, a bare IPv6 address
    or a URL ``scheme://host[:port][/path]``; ``default_port`` where the endpoint names none.

    Raises ``ValueError`` naming the endpoint when its port is not a number from 1 to 65535.
    """
    text = endpoint.strip()
    if "://" in text:
        url = urlsplit(text)
        try:
            port = url.port
        except ValueError:
            raise ValueError(f"endpoint {endpoint!r}: the port is not a number from 1 to 65535") from None
        return url.hostname or "localhost", port or default_port
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(f"endpoint {endpoint!r} is not [ADDRESS]:PORT")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:  # a host name, an IPv4 address or a bare IPv6 address: no port
        host, port_text = text, ""
    if not host:
        raise ValueError(f"endpoint {endpoint!r} names no host")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"endpoint {endpoint!r}: the port is not a number from 1 to 65535")
    return host, int(port_text)
