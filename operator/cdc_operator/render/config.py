"""Render one node's replicator config (the contract in ``cdc_replicator.contract.config``) from a pipeline."""

from __future__ import annotations

from cdc_replicator.contract import config as rc

from cdc_operator.api.common import Credentials, Tls
from cdc_operator.api.pipeline import quantity_bytes
from cdc_operator.render import names
from cdc_operator.render.inputs import Node, PipelineInputs, masking_key_env

# Paths inside the replicator container; the Deployment mounts the volumes there.
CONFIG_DIR = "/etc/cdc/config"
CONFIG_FILE = "replicator.yaml"
CDC_RAW_MOUNT = "/var/lib/cassandra/cdc_raw"
CHECKPOINT_DIR = "/var/run/cdc"
CHECKPOINT_FILE = f"{CHECKPOINT_DIR}/checkpoint.json"
TLS_DIR = "/etc/cdc/tls"
METRICS_PORT = 9400


def tls_mount(secret_name: str) -> str:
    return f"{TLS_DIR}/{secret_name}"


def _credentials(creds: Credentials | None, *prefix: str) -> rc.Credentials | None:
    if creds is None:
        return None
    return rc.Credentials(
        username_env=names.env_name(*prefix, "USERNAME"), password_env=names.env_name(*prefix, "PASSWORD")
    )


def _tls(tls: Tls | None) -> rc.Tls | None:
    if tls is None:
        return None
    if tls.secret_name is None:
        return rc.Tls(insecure_skip_verify=tls.insecure_skip_verify, min_version=tls.min_version)
    base = tls_mount(tls.secret_name)
    client = tls.client_certificate
    return rc.Tls(
        ca_file=f"{base}/{tls.ca_key}",
        cert_file=f"{base}/tls.crt" if client else None,
        key_file=f"{base}/tls.key" if client else None,
        min_version=tls.min_version,
    )


def replicator_config(inputs: PipelineInputs, node: Node) -> rc.ReplicatorConfig:
    spec = inputs.spec
    source = spec.source
    tuning = spec.replicator.tuning
    return rc.ReplicatorConfig(
        pipeline=f"{inputs.namespace}/{inputs.name}",
        source=rc.CassandraSource(
            node_name=node.name,
            cdc_raw_path=CDC_RAW_MOUNT,
            contact_points=list(source.contact_points),
            port=source.port,
            local_datacenter=source.local_datacenter,
            credentials=_credentials(source.credentials, "CASSANDRA"),
            tls=_tls(source.tls),
            keyspaces=list(source.keyspaces),
            tables=list(source.tables),
            cdc_total_space_bytes=None if source.cdc_total_space is None else quantity_bytes(source.cdc_total_space),
        ),
        destinations=[
            rc.Destination(
                name=d.name,
                type=d.type,
                endpoint=d.endpoint,
                database=d.database,
                target_schema=d.target_schema,
                credentials=_credentials(d.credentials, "DEST", d.name),
                tls=_tls(d.tls),
                tables=[
                    rc.TableOptions(
                        table=t.table, target=t.target, time_column=t.time_column, chunk_interval=t.chunk_interval
                    )
                    for t in d.tables
                ],
            )
            for d in spec.destinations
        ],
        masking=rc.Masking(
            policies=[rc.MaskingPolicyConfig(name=p.name, rules=p.spec.rules) for p in inputs.policies],
            keys=[rc.MaskingKeyEnv(name=k.name, env=masking_key_env(k.name)) for k in spec.masking_keys],
        ),
        checkpoint=rc.Checkpoint(path=CHECKPOINT_FILE),
        tuning=rc.Tuning(
            batch_size=tuning.batch_size,
            batch_max_wait_seconds=tuning.batch_max_wait_seconds,
            poll_interval_seconds=tuning.poll_interval_seconds,
        ),
        observability=rc.Observability(metrics_port=METRICS_PORT, log_level=spec.replicator.log_level),
    )
