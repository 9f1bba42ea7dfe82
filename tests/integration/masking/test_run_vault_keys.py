"""``cdc-replicator run`` reading its masking keys from the lab's OpenBao (``masking.vault``):
a key rotated mid-run reaches new events, a failed refresh keeps the last good key, and a key
that cannot be read stops the replicator at start with the path named, never the value."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cdc_replicator.schema.registry import SchemaRegistry
from kubernetes import client

from tests.integration.commitlog.helpers import run, start_position, unique_keyspace
from tests.integration.masking import harness
from tests.integration.masking.conftest import KeyWriter
from tests.integration.replicator.process import Replicator, free_port, wait_until, write_config

pytestmark = pytest.mark.integration

KEY_V1 = b"rotation-test-key-one-0123456789abcdef"
KEY_V2 = b"rotation-test-key-two-0123456789abcdef"


def token(key: bytes, version: int, value: str) -> str:
    """HMAC-SHA256 tokenization as the policy docs define it, computed here without the replicator."""
    return f"v{version}:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def policy(keys: list[dict[str, Any]], lab: dict[str, Any], refresh: float) -> dict[str, Any]:
    rules = [{"name": "email", "classification": "PII", "match": {"column": "email"}, "action": "hmac",
              "keyRef": "tokens"}]  # fmt: skip
    return {"policies": [{"name": "people", "rules": rules}], "vault": harness.vault_section(lab, keys, refresh)}


def emails(dsn: str, schema: str, keyspace: str) -> dict[int, str]:
    async def read() -> dict[int, str]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(f'SELECT id, email FROM "{schema}"."{keyspace}_people"')
        finally:
            await conn.close()
        return {r["id"]: r["email"] for r in rows}

    return asyncio.run(read())


def test_key_rotated_in_openbao_mid_run_reaches_new_events_and_nothing_crashes(
    tmp_path: Path, lab: dict[str, Any], vault: Any, write_key: KeyWriter, cql_session: Any,
    registry: SchemaRegistry, cdc_raw: Path, replication: str, postgres_dsn: str, pg_schema: str,
) -> None:  # fmt: skip
    keyspace = unique_keyspace("mask_rot")
    run(cql_session, f"CREATE KEYSPACE {keyspace} WITH replication = {replication}")
    run(cql_session, f"CREATE TABLE {keyspace}.people (id int PRIMARY KEY, email text) WITH cdc = true")
    path = write_key("tokens", KEY_V1)
    start = start_position(cdc_raw)

    def insert(ids: range, tag: str) -> Any:
        for n in ids:
            run(cql_session, f"INSERT INTO {keyspace}.people (id, email) VALUES ({n}, 'p{n}-{tag}@example.org')")
        return harness.end_of(cdc_raw, registry, keyspace, start)

    end = insert(range(5), "a")
    port = free_port()
    dests, env = harness.destinations(tmp_path, pg_schema, postgres_dsn)
    masking = policy([{"name": "tokens", "path": path}], lab, refresh=0.5)
    config = write_config(tmp_path / "config.yaml", **harness.config(tmp_path, cdc_raw, keyspace, port, dests, masking))
    replicator = Replicator(config, {**env, **harness.vault_env(lab)}, tmp_path)
    checkpoint = tmp_path / "checkpoint.json"
    metrics_url = f"http://127.0.0.1:{port}/metrics"

    def version() -> float | None:
        return harness.metric(harness.get(metrics_url)[1], "cdc_masking_key_version", 'key="tokens"')

    def refresh_errors() -> float:
        found = harness.metric(harness.get(metrics_url)[1], "cdc_masking_key_refresh_errors_total", 'key="tokens"')
        return found or 0.0

    replicator.start()
    try:
        wait_until(lambda: harness.caught_up(checkpoint, end, ["pg"]), 120, "first rows", replicator.logs)
        assert version() == 1
        first = emails(postgres_dsn, pg_schema, keyspace)
        assert first == {n: token(KEY_V1, 1, f"p{n}-a@example.org") for n in range(5)}

        # Rotate: a new version of the same secret; the replicator picks it up on its timer.
        write_key("tokens", KEY_V2)
        wait_until(lambda: version() == 2, 60, "key version 2 in /metrics", replicator.logs)
        end = insert(range(3, 8), "b")  # rows 3 and 4 rewritten, 5..7 new
        wait_until(lambda: harness.caught_up(checkpoint, end, ["pg"]), 120, "rows after the rotation", replicator.logs)
        after = emails(postgres_dsn, pg_schema, keyspace)
        assert after == {
            **{n: token(KEY_V1, 1, f"p{n}-a@example.org") for n in range(3)},
            **{n: token(KEY_V2, 2, f"p{n}-b@example.org") for n in range(3, 8)},
        }

        # A refresh that fails (the latest version deleted) keeps version 2 and counts the error.
        vault.secrets.kv.v2.delete_latest_version_of_secret(path=path)
        wait_until(lambda: refresh_errors() > 0, 60, "a counted refresh error", replicator.logs)
        end = insert(range(8, 10), "c")
        wait_until(lambda: harness.caught_up(checkpoint, end, ["pg"]), 120, "rows after the failure", replicator.logs)
        assert version() == 2
        last = emails(postgres_dsn, pg_schema, keyspace)
        assert {n: last[n] for n in (8, 9)} == {n: token(KEY_V2, 2, f"p{n}-c@example.org") for n in (8, 9)}
        assert replicator.alive()
    finally:
        code = replicator.stop()
    logs = replicator.logs()
    assert code == 0, logs
    assert "Traceback" not in logs
    assert "refreshing failed, keeping version 2" in logs
    for secret in (KEY_V1, KEY_V2):
        assert base64.b64encode(secret).decode() not in logs
        assert secret.decode() not in logs


def test_unreadable_key_stops_the_replicator_at_start_naming_the_path_not_the_value(
    tmp_path: Path, lab: dict[str, Any], vault: Any, write_key: KeyWriter, vault_policy: Callable[[str], str],
    postgres_dsn: str, pg_schema: str, cdc_raw: Path,
) -> None:  # fmt: skip
    good = write_key("tokens", KEY_V1)
    missing = f"{good}-absent"
    forbidden = write_key("forbidden", KEY_V2)
    readable = "\n".join(f'path "secret/data/{p}" {{ capabilities = ["read"] }}' for p in (good, missing))
    token = vault.auth.token.create(policies=[vault_policy(readable)], ttl="10m")["auth"]["client_token"]
    dests, env = harness.destinations(tmp_path, pg_schema, postgres_dsn)
    keys = [
        {"name": "tokens", "path": good, "field": "nope"},
        {"name": "salt", "path": missing},
        {"name": "phones", "path": forbidden},
    ]
    masking = policy(keys, lab, refresh=60)
    masking["policies"][0]["rules"] += [
        {"name": "ssn", "classification": "PII", "match": {"column": "ssn"}, "action": "hash", "saltRef": "salt"},
        {"name": "phone", "classification": "PII", "match": {"column": "phone"}, "action": "hmac", "keyRef": "phones"},
    ]
    config = harness.config(tmp_path, cdc_raw, "mask_never_read", free_port(), dests, masking)
    env[harness.VAULT_TOKEN_ENV] = token  # may read the first two paths only
    replicator = Replicator(write_config(tmp_path / "config.yaml", **config), env, tmp_path)
    replicator.start()
    code = replicator.wait(120)
    logs = replicator.logs()
    assert code == 2, logs
    assert f"masking key 'tokens' at secret/{good}: the secret has no field 'nope'" in logs
    assert f"masking key 'salt' at secret/{missing}: no such secret" in logs
    assert f"masking key 'phones' at secret/{forbidden}: access denied by Vault policy" in logs
    assert "Traceback" not in logs
    for secret in (KEY_V1, KEY_V2):
        assert base64.b64encode(secret).decode() not in logs
    assert token not in logs


def test_kubernetes_auth_with_a_service_account_token_file(
    tmp_path: Path, lab: dict[str, Any], vault: Any, kube_api: Any, kube_namespace: str, write_key: KeyWriter,
    vault_policy: Callable[[str], str], cql_session: Any, registry: SchemaRegistry, cdc_raw: Path, replication: str,
    postgres_dsn: str, pg_schema: str,
) -> None:  # fmt: skip
    """The replicator logs in as its service account (a TokenRequest token in a file, as a pod
    has it) through OpenBao's Kubernetes auth against the lab's API server."""
    path = write_key("tokens", KEY_V1)
    policy_name = vault_policy(f'path "secret/data/{path}" {{ capabilities = ["read"] }}')
    role = f"replicator-{uuid.uuid4().hex[:8]}"
    vault.auth.kubernetes.create_role(
        name=role, bound_service_account_names=["replicator"], bound_service_account_namespaces=[kube_namespace],
        policies=[policy_name], ttl="5m",
    )  # fmt: skip
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_service_account(
        kube_namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="replicator"))
    )
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[lab["kubernetes"]["service_account_issuer"]], expiration_seconds=600)
    )
    status = core.create_namespaced_service_account_token("replicator", kube_namespace, request).status
    assert status is not None
    jwt_path = tmp_path / "sa-token"
    jwt_path.write_text(str(status.token))

    keyspace = unique_keyspace("mask_k8s")
    run(cql_session, f"CREATE KEYSPACE {keyspace} WITH replication = {replication}")
    run(cql_session, f"CREATE TABLE {keyspace}.people (id int PRIMARY KEY, email text) WITH cdc = true")
    start = start_position(cdc_raw)
    run(cql_session, f"INSERT INTO {keyspace}.people (id, email) VALUES (1, 'k8s@example.org')")
    end = harness.end_of(cdc_raw, registry, keyspace, start)
    dests, env = harness.destinations(tmp_path, pg_schema, postgres_dsn)
    masking = policy([{"name": "tokens", "path": path}], lab, refresh=60)
    masking["vault"]["auth"] = {"method": "kubernetes", "role": role, "jwtPath": str(jwt_path)}
    config = harness.config(tmp_path, cdc_raw, keyspace, free_port(), dests, masking)
    replicator = Replicator(write_config(tmp_path / "config.yaml", **config), env, tmp_path)
    replicator.start()
    try:
        wait_until(lambda: harness.caught_up(tmp_path / "checkpoint.json", end, ["pg"]), 120, "pg", replicator.logs)
    finally:
        code = replicator.stop()
        vault.auth.kubernetes.delete_role(name=role)
    assert code == 0, replicator.logs()
    assert emails(postgres_dsn, pg_schema, keyspace) == {1: token(KEY_V1, 1, "k8s@example.org")}
    assert str(status.token) not in replicator.logs()
