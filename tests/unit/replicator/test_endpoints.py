"""One reading of "host:port" for every endpoint the replicator is given (``cdc_replicator.endpoints``)."""

from __future__ import annotations

import pytest
from cdc_replicator.contract.config import ConfigError, Destination
from cdc_replicator.endpoints import host_port
from cdc_replicator.pipeline.factory import build_sink

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("db1", ("db1", 9042)),
        ("db1:9142", ("db1", 9142)),
        ("127.0.0.1:5433", ("127.0.0.1", 5433)),
        ("::1", ("::1", 9042)),
        ("[::1]", ("::1", 9042)),
        ("[fe80::1]:9043", ("fe80::1", 9043)),
        (" db1:1 ", ("db1", 1)),
        ("http://ch:8124", ("ch", 8124)),
        ("https://ch", ("ch", 9042)),
        ("https://[::1]:8443/path", ("::1", 8443)),
    ],
)
def test_host_and_port(endpoint: str, expected: tuple[str, int]) -> None:
    assert host_port(endpoint, 9042) == expected


@pytest.mark.parametrize("endpoint", ["db1:port", "db1:0", "db1:65536", "[::1", "[::1]9042", ":9042", "http://ch:x"])
def test_a_bad_endpoint_is_named(endpoint: str) -> None:
    with pytest.raises(ValueError, match="endpoint") as caught:
        host_port(endpoint, 9042)
    assert repr(endpoint) in str(caught.value)


def test_a_destination_with_a_bad_endpoint_is_a_config_error_naming_it() -> None:
    destination = Destination(name="pg", type="postgres", endpoint="pg:5432x", database="d")
    with pytest.raises(ConfigError, match=r"destination pg: endpoint 'pg:5432x'"):
        build_sink(destination, pipeline="p", node="n", types_of=None)
