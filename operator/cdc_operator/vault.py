"""Reading credentials and masking keys from Vault or OpenBao (same API) with hvac.

The operator authenticates once and re-authenticates when its token is rejected:

- ``kubernetes``: Vault's Kubernetes auth method with the operator's own service-account token
  (Vault checks it with a TokenReview; its reviewer needs ``system:auth-delegator``);
- ``token``: a token from the environment or a file (a mounted Secret).

Values are never logged. KV v2 only (what both Vault and OpenBao mount by default).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
from hvac import exceptions as hvac_errors

SA_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path, not a secret


class VaultPathNotFoundError(Exception):
    """The KV path (or a field of it) does not exist: a user error, reported in the pipeline's status."""


class VaultUnavailableError(Exception):
    """Vault cannot be reached or refuses us: transient, retried on the next resync."""


@dataclass(frozen=True)
class VaultSettings:
    addr: str
    auth: str = "kubernetes"  # or "token"
    role: str = "cdc-operator"
    auth_path: str = "kubernetes"
    kv_mount: str = "secret"
    token: str | None = None
    token_file: str | None = None
    jwt_file: str = SA_TOKEN

    @classmethod
    def from_env(cls) -> VaultSettings | None:
        """From VAULT_ADDR, VAULT_AUTH (kubernetes|token), VAULT_ROLE, VAULT_AUTH_PATH, VAULT_KV_MOUNT,
        VAULT_TOKEN, VAULT_TOKEN_FILE, VAULT_JWT_FILE; None when VAULT_ADDR is unset (no Vault)."""
        env = os.environ
        if not env.get("VAULT_ADDR"):
            return None
        return cls(
            addr=env["VAULT_ADDR"],
            auth=env.get("VAULT_AUTH", "kubernetes"),
            role=env.get("VAULT_ROLE", "cdc-operator"),
            auth_path=env.get("VAULT_AUTH_PATH", "kubernetes"),
            kv_mount=env.get("VAULT_KV_MOUNT", "secret"),
            token=env.get("VAULT_TOKEN"),
            token_file=env.get("VAULT_TOKEN_FILE"),
            jwt_file=env.get("VAULT_JWT_FILE", SA_TOKEN),
        )


@dataclass(frozen=True)
class VaultSecret:
    """A KV v2 secret's fields and its version (the version of masking keys goes into HMAC tokens)."""

    data: dict[str, str]
    version: int


class VaultReader:
    """Reads KV v2 secrets; thread-safe (handlers run in threads)."""

    def __init__(self, settings: VaultSettings) -> None:
        self.settings = settings
        self._client: Any = None
        self._lock = threading.Lock()

    def _login(self) -> Any:
        s = self.settings
        client = hvac.Client(url=s.addr, timeout=10)
        try:
            if s.auth == "token":
                token = s.token or (Path(s.token_file).read_text().strip() if s.token_file else None)
                if not token:
                    raise VaultUnavailableError("VAULT_AUTH=token but neither VAULT_TOKEN nor VAULT_TOKEN_FILE is set")
                client.token = token
            else:
                jwt = Path(s.jwt_file).read_text().strip()
                client.auth.kubernetes.login(role=s.role, jwt=jwt, mount_point=s.auth_path)
        except (hvac_errors.VaultError, OSError) as exc:
            raise VaultUnavailableError(f"cannot log in to Vault at {s.addr} ({s.auth} auth): {exc}") from exc
        return client

    def read(self, path: str, mount: str | None = None) -> VaultSecret:
        """The KV v2 secret at ``path`` below ``mount`` (default: the configured KV mount)."""
        mount = mount or self.settings.kv_mount
        for attempt in range(2):
            with self._lock:
                if self._client is None:
                    self._client = self._login()
                client = self._client
            try:
                response = client.secrets.kv.v2.read_secret_version(
                    path=path, mount_point=mount, raise_on_deleted_version=True
                )
            except hvac_errors.InvalidPath as exc:
                raise VaultPathNotFoundError(f"Vault path {mount}/{path} not found") from exc
            except hvac_errors.Forbidden as exc:
                with self._lock:
                    self._client = None  # token expired or revoked: log in again once
                if attempt == 1:
                    raise VaultUnavailableError(f"Vault denies reading {mount}/{path}") from exc
            except (hvac_errors.VaultError, OSError) as exc:
                raise VaultUnavailableError(f"Vault at {self.settings.addr}: {type(exc).__name__}") from exc
            else:
                data = response["data"]
                fields = {str(k): str(v) for k, v in (data.get("data") or {}).items()}
                return VaultSecret(fields, int(data.get("metadata", {}).get("version", 0)))
        raise AssertionError("unreachable")
