"""Masking keys from the lab's real OpenBao: token and Kubernetes auth, rotation, failures."""

from __future__ import annotations

import base64
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cdc_replicator.contract.policy import KeySource, MaskingPolicySpec
from cdc_replicator.masking.audit import MaskingMetrics
from cdc_replicator.masking.keys import KeyLoadError, VaultKeyStore, VaultSettings
from cdc_replicator.masking.masker import Masker
from kubernetes import client
from prometheus_client import generate_latest

from tests.integration.masking.conftest import KeyWriter
from tests.unit.masking.support import make_event, make_table

pytestmark = pytest.mark.integration

KEY_V1 = b"first-key-material-0123456789abcdef"
KEY_V2 = b"second-key-material-0123456789abcdef"


def settings(lab: dict[str, Any], **auth: Any) -> VaultSettings:
    return VaultSettings.model_validate({"address": lab["openbao"]["addr"], "auth": auth, "refreshSeconds": 3600})


def root_token_settings(lab: dict[str, Any], token_env: Callable[[str], str]) -> VaultSettings:
    return settings(lab, method="token", tokenEnv=token_env(lab["openbao"]["token"]))


def read_policy(*paths: str) -> str:
    return "\n".join(f'path "secret/data/{p}" {{ capabilities = ["read"] }}' for p in paths)


def counter(metrics: MaskingMetrics, key: str) -> float:
    return metrics.key_refresh_errors.labels(key)._value.get()  # type: ignore[no-any-return]


def test_token_auth_loads_each_key_with_its_version(
    lab: dict[str, Any], write_key: KeyWriter, token_env: Callable[[str], str], metrics: MaskingMetrics
) -> None:
    tokens_path = write_key("tokens", KEY_V1)
    write_key("tokens", KEY_V2)
    salt_path = write_key("salt", b"pepper-pepper-pepper", field="salt", encode=False)
    store = VaultKeyStore(
        root_token_settings(lab, token_env),
        [
            KeySource(name="tokens", path=tokens_path),
            KeySource.model_validate({"name": "salt", "path": salt_path, "field": "salt", "encoding": "utf8"}),
        ],
        metrics,
    )
    snapshot = store.load()
    assert snapshot.keys["tokens"].version == 2
    assert snapshot.keys["tokens"].secret == KEY_V2
    assert snapshot.keys["salt"].version == 1
    assert snapshot.keys["salt"].secret == b"pepper-pepper-pepper"
    assert metrics.key_version.labels("tokens")._value.get() == 2


def test_rotation_in_openbao_gives_new_events_the_new_key_version(
    lab: dict[str, Any], write_key: KeyWriter, token_env: Callable[[str], str], metrics: MaskingMetrics
) -> None:
    path = write_key("tokens", KEY_V1)
    store = VaultKeyStore(root_token_settings(lab, token_env), [KeySource(name="tokens", path=path)], metrics)
    store.load()
    table = make_table("shop", "customers", [("email", "text")])
    spec = MaskingPolicySpec.model_validate(
        {
            "rules": [
                {
                    "name": "email",
                    "classification": "PII",
                    "match": {"column": "email"},
                    "action": "hmac",
                    "keyRef": "tokens",
                }
            ]
        }
    )
    masker = Masker(spec, store, metrics)
    masker.check([table])

    def token_for(email: str) -> str:
        (event,) = masker.mask_batch([make_event(table, {"email": email})], lambda _e: table)
        return str(event.partition_key["email"])

    before = token_for("ada@example.com")
    assert store.refresh() is False  # nothing changed yet
    write_key("tokens", KEY_V2)
    assert store.refresh() is True
    after = token_for("ada@example.com")
    assert before.startswith("v1:")
    assert after.startswith("v2:")
    assert before[3:] != after[3:]
    assert token_for("ada@example.com") == after  # still deterministic within a version


def test_timer_refresh_picks_up_a_rotation(
    lab: dict[str, Any], write_key: KeyWriter, token_env: Callable[[str], str], metrics: MaskingMetrics
) -> None:
    path = write_key("tokens", KEY_V1)
    config = root_token_settings(lab, token_env).model_copy(update={"refresh_seconds": 0.2})
    store = VaultKeyStore(config, [KeySource(name="tokens", path=path)], metrics)
    store.load()
    store.start()
    try:
        write_key("tokens", KEY_V2)
        deadline = time.monotonic() + 30
        while store.snapshot().keys["tokens"].version != 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        store.stop()
    assert store.snapshot().keys["tokens"].version == 2


def test_wrong_path_missing_field_and_bad_key_name_the_path_not_the_value(
    lab: dict[str, Any], write_key: KeyWriter, token_env: Callable[[str], str], metrics: MaskingMetrics
) -> None:
    good = write_key("tokens", KEY_V1)
    short = write_key("short", b"tiny")
    not_base64 = write_key("garbled", b"%%%not base64 at all%%%", encode=False)
    sources = [
        KeySource(name="absent", path=f"{good}-does-not-exist"),
        KeySource(name="no-field", path=good, field="nope"),
        KeySource(name="short", path=short),
        KeySource(name="garbled", path=not_base64),
    ]
    store = VaultKeyStore(root_token_settings(lab, token_env), sources, metrics)
    with pytest.raises(KeyLoadError) as failed:
        store.load()
    message = str(failed.value)
    assert f"masking key 'absent' at secret/{good}-does-not-exist: no such secret" in message
    assert f"masking key 'no-field' at secret/{good}: the secret has no field 'nope'" in message
    assert f"masking key 'short' at secret/{short} field 'key': the key is 4 bytes, at least 16" in message
    assert f"masking key 'garbled' at secret/{not_base64} field 'key': the field is not valid base64" in message
    for secret in (KEY_V1, b"tiny", b"%%%not base64"):
        assert secret.decode() not in message
    assert failed.value.__cause__ is None
    assert store.snapshot().keys == {}


def test_denied_access_names_the_path(
    lab: dict[str, Any],
    vault: Any,
    write_key: KeyWriter,
    vault_policy: Callable[[str], str],
    token_env: Callable[[str], str],
    metrics: MaskingMetrics,
) -> None:
    allowed = write_key("allowed", KEY_V1)
    forbidden = write_key("forbidden", KEY_V2)
    policy = vault_policy(read_policy(allowed))
    token = vault.auth.token.create(policies=[policy], ttl="10m")["auth"]["client_token"]
    config = settings(lab, method="token", tokenEnv=token_env(token))
    assert VaultKeyStore(config, [KeySource(name="ok", path=allowed)], metrics).load().keys["ok"].secret == KEY_V1
    store = VaultKeyStore(config, [KeySource(name="ok", path=allowed), KeySource(name="no", path=forbidden)], metrics)
    with pytest.raises(KeyLoadError, match=f"masking key 'no' at secret/{forbidden}: access denied by Vault policy"):
        store.load()


def test_refresh_failure_keeps_the_last_good_key_and_counts_the_error(
    lab: dict[str, Any],
    vault: Any,
    write_key: KeyWriter,
    vault_policy: Callable[[str], str],
    token_env: Callable[[str], str],
    metrics: MaskingMetrics,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = write_key("tokens", KEY_V1)
    policy = vault_policy(read_policy(path))
    token = vault.auth.token.create(policies=[policy], ttl="10m")["auth"]["client_token"]
    store = VaultKeyStore(
        settings(lab, method="token", tokenEnv=token_env(token)), [KeySource(name="tokens", path=path)], metrics
    )
    loaded = store.load()
    vault_policy(f'path "secret/data/{path}" {{ capabilities = ["deny"] }}')  # access revoked
    write_key("tokens", KEY_V2)
    with caplog.at_level(logging.ERROR, logger="cdc_replicator.masking.keys"):
        assert store.refresh() is False
    assert store.snapshot() is loaded
    assert store.snapshot().keys["tokens"].secret == KEY_V1
    assert counter(metrics, "tokens") == 1
    assert f"keeping version 1: masking key 'tokens' at secret/{path}: access denied" in caplog.text


def test_a_renewable_token_is_renewed_before_it_runs_out_and_a_new_token_file_is_used(
    lab: dict[str, Any], vault: Any, write_key: KeyWriter, vault_policy: Callable[[str], str],
    metrics: MaskingMetrics, tmp_path: Path,
) -> None:  # fmt: skip
    path = write_key("tokens", KEY_V1)
    policy = vault_policy(read_policy(path))
    first = vault.auth.token.create(policies=[policy], ttl="1h", renewable=True)["auth"]["client_token"]
    token_file = tmp_path / "vault-token"
    token_file.write_text(first)
    # A refresh period long against the TTL: the token must be renewed at once.
    config = settings(lab, method="token", tokenFile=str(token_file)).model_copy(update={"refresh_seconds": 1800})
    store = VaultKeyStore(config, [KeySource(name="tokens", path=path)], metrics)
    assert store.load().keys["tokens"].version == 1
    assert vault.auth.token.lookup(first)["data"].get("last_renewal_time") is not None

    # The token file is rewritten (a sidecar replaced the token) and the old token revoked.
    second = vault.auth.token.create(policies=[policy], ttl="10h", renewable=True)["auth"]["client_token"]
    token_file.write_text(second)
    vault.auth.token.revoke(first)
    write_key("tokens", KEY_V2)
    assert store.refresh() is True
    assert store.snapshot().keys["tokens"].version == 2
    assert vault.auth.token.lookup(second)["data"].get("last_renewal_time") is None  # 10 h left: no need yet
    assert counter(metrics, "tokens") == 0


def test_kubernetes_auth_with_a_service_account_token_from_the_lab_api_server(
    lab: dict[str, Any],
    vault: Any,
    kube_api: Any,
    kube_namespace: str,
    write_key: KeyWriter,
    vault_policy: Callable[[str], str],
    metrics: MaskingMetrics,
    tmp_path: Path,
) -> None:
    path = write_key("tokens", KEY_V1)
    policy = vault_policy(read_policy(path))
    role = f"masking-{uuid.uuid4().hex[:8]}"
    vault.auth.kubernetes.create_role(
        name=role,
        bound_service_account_names=["replicator"],
        bound_service_account_namespaces=[kube_namespace],
        policies=[policy],
        ttl="5m",
    )
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_service_account(
        kube_namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="replicator"))
    )
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[lab["kubernetes"]["service_account_issuer"]], expiration_seconds=600)
    )
    status = core.create_namespaced_service_account_token("replicator", kube_namespace, request).status
    assert status is not None
    jwt = str(status.token)
    jwt_path = tmp_path / "token"
    jwt_path.write_text(jwt)
    try:
        config = settings(lab, method="kubernetes", role=role, jwtPath=str(jwt_path))
        store = VaultKeyStore(config, [KeySource(name="tokens", path=path)], metrics)
        assert store.load().keys["tokens"].secret == KEY_V1
        write_key("tokens", KEY_V2)
        assert store.refresh() is True
        assert store.snapshot().keys["tokens"].version == 2

        # A role the service account is not bound to: refused, naming the role, not the token.
        wrong = settings(lab, method="kubernetes", role=f"{role}-missing", jwtPath=str(jwt_path))
        with pytest.raises(KeyLoadError, match=f"login as role '{role}-missing' at auth/kubernetes failed") as failed:
            VaultKeyStore(wrong, [KeySource(name="tokens", path=path)], metrics).load()
        assert jwt not in str(failed.value)
    finally:
        vault.auth.kubernetes.delete_role(name=role)


def test_key_material_never_reaches_logs_metrics_or_errors(
    lab: dict[str, Any],
    vault: Any,
    write_key: KeyWriter,
    vault_policy: Callable[[str], str],
    token_env: Callable[[str], str],
    metrics: MaskingMetrics,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = write_key("tokens", KEY_V1)
    policy = vault_policy(read_policy(path))
    token = vault.auth.token.create(policies=[policy], ttl="10m")["auth"]["client_token"]
    config = settings(lab, method="token", tokenEnv=token_env(token))
    store = VaultKeyStore(config, [KeySource(name="tokens", path=path)], metrics)
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        store.load()
        texts.append(repr(store.snapshot()))
        write_key("tokens", KEY_V2)
        store.refresh()
        vault_policy(f'path "secret/data/{path}" {{ capabilities = ["deny"] }}')
        store.refresh()
        with pytest.raises(KeyLoadError) as failed:
            VaultKeyStore(config, [KeySource(name="tokens", path=path)], metrics).load()
        texts.append(str(failed.value))
    texts.append(caplog.text)
    texts.extend(record.getMessage() for record in caplog.records)
    texts.append(generate_latest(metrics.registry).decode())
    secrets = [KEY_V1, KEY_V2, base64.b64encode(KEY_V1), base64.b64encode(KEY_V2), token.encode()]
    for text in texts:
        for secret in secrets:
            assert secret.decode() not in text
    assert "masking key tokens now at version 2" in caplog.text
