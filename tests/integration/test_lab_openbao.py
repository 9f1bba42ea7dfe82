"""OpenBao in the lab: KV v2, and Kubernetes auth validating tokens the lab API server issued."""

from __future__ import annotations

import uuid
from typing import Any

import hvac.exceptions
import pytest
from kubernetes import client

pytestmark = pytest.mark.integration


def test_kv_v2_round_trip_keeps_versions(vault: Any) -> None:
    path = f"smoke/{uuid.uuid4().hex}"
    vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"salt": "one"})
    vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"salt": "two"})
    latest = vault.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)
    first = vault.secrets.kv.v2.read_secret_version(path=path, version=1, raise_on_deleted_version=True)
    assert latest["data"]["data"] == {"salt": "two"}
    assert latest["data"]["metadata"]["version"] == 2
    assert first["data"]["data"] == {"salt": "one"}


def test_kubernetes_auth_accepts_a_token_from_the_lab_api_server(
    vault: Any, kube_api: Any, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    for name in ("replicator", "stranger"):
        core.create_namespaced_service_account(
            kube_namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
        )
    role = f"smoke-{uuid.uuid4().hex[:8]}"
    vault.auth.kubernetes.create_role(
        name=role,
        bound_service_account_names=["replicator"],
        bound_service_account_namespaces=[kube_namespace],
        policies=["default"],
        ttl="5m",
    )

    def token_for(account: str) -> str:
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(
                audiences=["https://kubernetes.default.svc.cluster.local"], expiration_seconds=600
            )
        )
        return str(core.create_namespaced_service_account_token(account, kube_namespace, request).status.token)

    login = hvac.Client(url=vault.url).auth.kubernetes.login(role=role, jwt=token_for("replicator"))
    assert login["auth"]["client_token"]
    assert login["auth"]["metadata"]["service_account_name"] == "replicator"
    assert login["auth"]["metadata"]["service_account_namespace"] == kube_namespace

    with pytest.raises(hvac.exceptions.VaultError):
        hvac.Client(url=vault.url).auth.kubernetes.login(role=role, jwt=token_for("stranger"))
