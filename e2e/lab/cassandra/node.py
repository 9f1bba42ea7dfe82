"""One lab node: where it lives, what it listens on, and the ``cassandra.yaml`` it runs with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOGBACK = """<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>${cassandra.logdir}/system.log</file>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
"""


@dataclass(frozen=True)
class ClientTls:
    """PEM files for a node's client-to-node encryption, and for the lab's own driver to reach it.

    Cassandra's ``PEMBasedSslContextFactory`` wants ``keystore`` to hold an unencrypted (or
    password-protected) **PKCS#8** private key (``BEGIN PRIVATE KEY``, not ``BEGIN EC/RSA PRIVATE
    KEY``) followed by the certificate chain, and ``truststore`` the CA certificates, in PEM."""

    keystore: Path
    truststore: Path
    ca: Path
    """CA bundle the lab's driver verifies the node against."""
    client_cert: Path
    client_key: Path
    """The pair the lab's driver presents (the node requires a client certificate)."""
    protocols: tuple[str, ...] = ("TLSv1.2", "TLSv1.3")
    """The node's accepted_protocols."""


@dataclass(frozen=True)
class Node:
    index: int
    root: Path
    cql_port: int
    storage_port: int
    jmx_port: int
    token: int
    name: str = ""
    cluster_name: str = "cdc-lab"
    extra_yaml: str = ""
    """Settings appended to cassandra.yaml (later keys win in SnakeYAML's map)."""
    client_tls: ClientTls | None = None
    """When set, CQL clients must speak TLS (1.2 or 1.3) and present a certificate from the truststore."""

    @property
    def address(self) -> str:
        return f"127.0.0.{self.index + 1}"

    @property
    def cdc_raw(self) -> Path:
        return self.root / "cdc_raw"

    @property
    def commitlog(self) -> Path:
        return self.root / "commitlog"

    @property
    def log(self) -> Path:
        return self.root / "logs" / "system.log"

    @property
    def stdout_log(self) -> Path:
        return self.root / "logs" / "stdout.log"

    @property
    def pidfile(self) -> Path:
        return self.root / "pid"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name or f"node{self.index + 1}",
            "address": self.address,
            "cql_port": self.cql_port,
            "jmx_port": self.jmx_port,
            "cdc_raw": str(self.cdc_raw),
            "commitlog": str(self.commitlog),
            "data": str(self.root / "data"),
            "log": str(self.log),
        }


def render_yaml(node: Node, seeds: str) -> str:
    return f"""\
cluster_name: {node.cluster_name}
num_tokens: 1
initial_token: {node.token}
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
listen_address: {node.address}
rpc_address: {node.address}
storage_port: {node.storage_port}
native_transport_port: {node.cql_port}
start_native_transport: true
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "{seeds}"
data_file_directories: [{node.root / "data"}]
commitlog_directory: {node.commitlog}
cdc_raw_directory: {node.cdc_raw}
saved_caches_directory: {node.root / "saved_caches"}
hints_directory: {node.root / "hints"}
cdc_enabled: true
cdc_total_space: 2048MiB
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 32MiB
auto_bootstrap: false
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
concurrent_compactors: 1
concurrent_reads: 8
concurrent_writes: 16
{_client_encryption(node.client_tls)}{node.extra_yaml}"""


def _client_encryption(tls: ClientTls | None) -> str:
    if tls is None:
        return ""
    return f"""\
client_encryption_options:
  enabled: true
  optional: false
  ssl_context_factory:
    class_name: org.apache.cassandra.security.PEMBasedSslContextFactory
  keystore: {tls.keystore}
  truststore: {tls.truststore}
  require_client_auth: true
  accepted_protocols: [{", ".join(tls.protocols)}]
"""
