"""The operator's Vault reader against the lab's OpenBao: token auth, versions, and the two kinds of failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cdc_operator.vault import VaultPathNotFoundError, VaultReader, VaultSettings, VaultUnavailableError

from tests.integration.operator.conftest import free_port

pytestmark = pytest.mark.integration


def test_token_auth_reads_fields_and_version(lab: dict[str, Any], vault: Any, tmp_path: Path) -> None:
    path = f"optest-reader-{tmp_path.name}"
    vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"username": "u", "password": "p1"})
    vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"username": "u", "password": "p2"})
    token_file = tmp_path / "token"
    token_file.write_text(lab["openbao"]["token"] + "\n")
    reader = VaultReader(VaultSettings(addr=lab["openbao"]["addr"], auth="token", token_file=str(token_file)))
    secret = reader.read(path)
    assert secret.data == {"username": "u", "password": "p2"}
    assert secret.version == 2
    with pytest.raises(VaultPathNotFoundError, match="not found"):
        reader.read(f"{path}-missing")
    vault.secrets.kv.v2.delete_metadata_and_all_versions(path=path)


def test_failures_are_unavailable_not_crashes(lab: dict[str, Any], tmp_path: Path) -> None:
    unreachable = VaultReader(VaultSettings(addr=f"http://127.0.0.1:{free_port()}", auth="token", token="t"))
    with pytest.raises(VaultUnavailableError):
        unreachable.read("anything")
    jwt = tmp_path / "jwt"
    jwt.write_text("not-a-service-account-token")
    refused = VaultReader(VaultSettings(addr=lab["openbao"]["addr"], role="nobody", jwt_file=str(jwt)))
    with pytest.raises(VaultUnavailableError, match="cannot log in"):
        refused.read("anything")
