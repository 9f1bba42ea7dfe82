"""The CQL session to the source cluster, through which ``system_schema`` is read.

``connect_cassandra`` is the one way the replicator, ``dump`` and the benchmarks reach Cassandra:
contact points as ``host[:port]`` (``endpoints.host_port``), the login from the environment, TLS
from ``tls.py``, protocol v5, and the driver's load balancing kept to the local datacenter when
one is named. ``explain_failure`` turns the driver's refusal into one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cdc_replicator.contract.config import CassandraCluster, ConfigError
from cdc_replicator.endpoints import host_port
from cdc_replicator.tls import client_context, explain

if TYPE_CHECKING:
    from cassandra.cluster import Session

PROTOCOL_VERSION = 5


def connect_cassandra(cluster: CassandraCluster, *, connect_timeout: float | None = None) -> Session:
    """A connected session (``connect_timeout``: the driver's default when None).

    The driver's errors propagate (``NoHostAvailable`` and others: all mean "not now"); a
    malformed contact point is a ``ConfigError`` naming it, an unloadable TLS file a
    ``TlsConfigError``."""
    from cassandra.auth import PlainTextAuthProvider  # noqa: PLC0415 - the driver's import is slow
    from cassandra.cluster import Cluster  # noqa: PLC0415
    from cassandra.policies import DCAwareRoundRobinPolicy, RoundRobinPolicy  # noqa: PLC0415

    try:
        points = [host_port(point, cluster.port) for point in cluster.contact_points]
    except ValueError as exc:
        raise ConfigError(f"contact points: {exc}") from None
    kwargs: dict[str, Any] = {
        "port": cluster.port,
        "protocol_version": PROTOCOL_VERSION,
        "load_balancing_policy": (
            DCAwareRoundRobinPolicy(cluster.local_datacenter) if cluster.local_datacenter else RoundRobinPolicy()
        ),
    }
    if connect_timeout is not None:
        kwargs["connect_timeout"] = connect_timeout
    if cluster.credentials is not None:
        user, password = cluster.credentials.resolve()
        kwargs["auth_provider"] = PlainTextAuthProvider(user or "", password or "")
    context = client_context(cluster.tls, ", ".join(cluster.contact_points))
    if context is not None:
        kwargs["ssl_context"] = context
    session: Session = Cluster(points, **kwargs).connect()
    return session


def explain_failure(exc: BaseException, cluster: CassandraCluster) -> str:
    """The driver's failure in one line; TLS failures name each endpoint and the reason."""
    errors = getattr(exc, "errors", None)  # NoHostAvailable: {endpoint: exception}
    if isinstance(errors, dict) and errors:
        return "; ".join(explain(e, str(host), cluster.tls) or f"{host}: {e}" for host, e in errors.items())
    return explain(exc, ", ".join(cluster.contact_points), cluster.tls) or str(exc)
