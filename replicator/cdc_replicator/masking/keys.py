"""Masking keys and salts from Vault / OpenBao (KV v2), cached and refreshed on a timer.

Each named key (``KeySource``: mount, path, field, encoding) is one field of a KV v2 secret;
the secret's version is the key's version, carried in HMAC outputs as ``v<version>:``.

- ``VaultKeyStore.load()`` reads every key once; any failure raises ``KeyLoadError`` naming
  the key, the path and the reason, and the replicator refuses to start.
- ``refresh()`` (every ``refreshSeconds`` on a daemon thread once ``start()`` is called)
  reads them again. With token auth the token is read again from its file or variable each
  time, and renewed while fewer than three refresh periods of its TTL remain; Kubernetes auth
  logs in again after two thirds of its lease. A key that fails keeps its last good version, the failure is logged
  (name, path, reason) and ``cdc_masking_key_refresh_errors_total{key}`` grows.
- ``snapshot()`` returns the keys in use and a generation that changes when any key
  changes, so the masker recompiles its plans exactly then.

Key bytes never reach a log line, a metric, an exception message or a ``repr``: errors are
built here from names and paths only, and hvac's exceptions are not chained into ours.

Two ways keys reach a replicator (the config's ``masking`` section)
-------------------------------------------------------------------
- ``masking.vault`` (address, auth ``token``/``kubernetes``, ``refreshSeconds``, ``keys[]``):
  the replicator reads KV v2 itself with a ``VaultKeyStore``. A key that cannot be read at
  start stops it (exit 2, key and path named); a rotation is picked up within
  ``refreshSeconds`` without a restart; a failed refresh keeps the last good key.
- ``masking.keys[].env``: the operator reads Vault and injects ``<VAR>`` / ``<VAR>_VERSION``
  (``keys_from_environment``); a rotation changes the pod-template hash, so the operator
  rolls the replicators (within its resync period) and they start on the new version.
Both may be combined (distinct key names); ``cdc_masking_key_version{key}`` shows the
version in use either way.

Re-keying (rotating an HMAC key or a salt)
------------------------------------------
1. Write the new key as a new version of the same KV v2 secret (``bao kv put secret/<path>
   key=<base64 of 32 random bytes>``). Keep one key per secret path: writing any field of a
   secret bumps the version of all its fields.
2. Within ``refreshSeconds`` every replicator picks it up (``masking.vault``; with keys in
   the environment, once the operator has rolled the replicators): new events carry
   ``v<N+1>:`` tokens; ``cdc_masking_key_version{key}`` shows the version each replicator
   uses. Nothing is re-masked in place.
3. Tokens of the two versions differ for the same value, so joins on a token only match
   within one version, and a masked primary-key column makes a *new* destination row for a
   row written after the rotation (the old row, under ``v<N>:``, stays). To converge on the
   new version, re-snapshot the affected tables (re-read them from Cassandra through the
   pipeline, e.g. by replaying from a fresh snapshot) and then delete destination rows whose
   masked key still starts with ``v<N>:``. For ``hash`` (salts carry no version in the
   output) the same applies, but old rows cannot be told apart by prefix: re-snapshot into a
   new destination table and swap.
4. Keep the old version in Vault (KV v2 keeps history; do not destroy it) until step 3 is
   done: an analyst holding a raw value can still derive its old token to find old rows.
5. If a key leaked, rotate as above and destroy the old version
   (``bao kv destroy -versions=N``) once the destinations are re-keyed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import hvac
import hvac.exceptions
import requests

from cdc_replicator.contract import keycodec
from cdc_replicator.contract.policy import (
    SERVICE_ACCOUNT_TOKEN_PATH,
    KeyEncoding,
    KeySource,
    VaultAuth,
    VaultSettings,
)
from cdc_replicator.masking.actions import KeyMaterial
from cdc_replicator.masking.audit import MaskingMetrics

LOG = logging.getLogger("cdc_replicator.masking.keys")
__all__ = [
    "SERVICE_ACCOUNT_TOKEN_PATH",
    "KeyLoadError",
    "KeySnapshot",
    "MergedKeys",
    "StaticKeys",
    "VaultAuth",
    "VaultKeyStore",
    "VaultSettings",
    "keys_from_environment",
]


class KeyLoadError(RuntimeError):
    """A key could not be read; the message names the key and the path, never key material."""


@dataclass(frozen=True, slots=True)
class KeySnapshot:
    """The keys in use. ``generation`` changes whenever any key's version or bytes change."""

    generation: int
    keys: Mapping[str, KeyMaterial] = field(default_factory=lambda: MappingProxyType({}))


class StaticKeys:
    """Keys fixed in code: for tests, benchmarks and policies that need no keys."""

    def __init__(self, keys: Mapping[str, KeyMaterial] | None = None) -> None:
        self._snapshot = KeySnapshot(0, MappingProxyType(dict(keys or {})))

    def snapshot(self) -> KeySnapshot:
        return self._snapshot


class MergedKeys:
    """Keys from several providers with distinct names (e.g. environment and Vault), as one provider.

    The snapshot is rebuilt only when a provider's generation changes; its generation grows then.
    """

    def __init__(self, *providers: StaticKeys | VaultKeyStore) -> None:
        self.providers = providers
        self._generations: tuple[int, ...] = ()
        self._snapshot = KeySnapshot(0)
        self._lock = threading.Lock()  # the feed thread and the event loop both ask

    def snapshot(self) -> KeySnapshot:
        parts = [p.snapshot() for p in self.providers]
        generations = tuple(part.generation for part in parts)
        with self._lock:
            if generations != self._generations:
                keys = {name: material for part in parts for name, material in part.keys.items()}
                self._snapshot = KeySnapshot(self._snapshot.generation + 1, MappingProxyType(keys))
                self._generations = generations
            return self._snapshot


def _location(source: KeySource) -> str:
    return f"{source.mount}/{source.path}"


def decode_key(text: Any, encoding: KeyEncoding, where: str) -> bytes:
    """The key bytes of a stored value; errors say what is wrong and ``where``, never the value."""
    try:
        return keycodec.decode_key(text, encoding, where)
    except keycodec.InvalidKeyError as exc:
        raise KeyLoadError(str(exc)) from None


def keys_from_environment(
    variables: Mapping[str, str],
    encoding: KeyEncoding = KeyEncoding.BASE64,
    environ: Mapping[str, str] = os.environ,
) -> StaticKeys:
    """Keys injected as environment variables (e.g. by the operator from a Secret it owns).

    ``variables`` maps key names to variable names; ``<VARIABLE>_VERSION`` must hold the
    key's version, because tokens carry it and a rotation must change it.
    """
    keys: dict[str, KeyMaterial] = {}
    problems: list[str] = []
    for name, variable in variables.items():
        where = f"masking key {name!r} from ${variable}"
        try:
            if variable not in environ:
                raise KeyLoadError(f"{where}: the variable is not set")
            version_text = environ.get(f"{variable}_VERSION", "")
            if not version_text.isdigit():
                raise KeyLoadError(f"{where}: ${variable}_VERSION must hold the key's version (a number)")
            keys[name] = KeyMaterial(int(version_text), decode_key(environ[variable], encoding, where))
        except KeyLoadError as exc:
            problems.append(str(exc))
    if problems:
        raise KeyLoadError("; ".join(problems))
    return StaticKeys(keys)


class VaultKeyStore:
    """Named keys read from Vault KV v2; see the module docstring."""

    def __init__(
        self,
        settings: VaultSettings,
        sources: Iterable[KeySource],
        metrics: MaskingMetrics,
        client_factory: Callable[[VaultSettings], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.sources = tuple(sources)
        self.metrics = metrics
        for source in self.sources:
            # Present from the start at 0: increase() sees a key's first failed refresh (a series that
            # appears already at 1 would not count as an increase).
            metrics.key_refresh_errors.labels(source.name)
        self._client_factory = client_factory or _new_client
        self._client: Any = None
        self._login_expires = 0.0
        self._snapshot = KeySnapshot(0)
        self._lock = threading.Lock()  # one refresh at a time (timer thread and explicit calls)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> KeySnapshot:
        return self._snapshot

    # --- reading --------------------------------------------------------------------------

    def _login(self) -> Any:
        """A client with a valid token, logging in again when the last login is near its end."""
        auth = self.settings.auth
        if auth.method == "token":
            # Read the token again at every refresh: a token file mounted from a Secret is
            # rewritten in place when the token is renewed or replaced.
            client = self._client or self._client_factory(self.settings)
            client.token = self._token()
            self._client = client
            self._renew(client)
            return client
        if self._client is not None and time.monotonic() < self._login_expires:
            return self._client
        client = self._client_factory(self.settings)
        if not auth.role:
            raise KeyLoadError("Vault kubernetes auth needs a role")
        try:
            jwt = Path(auth.jwt_path).read_text().strip()
        except OSError as exc:
            raise KeyLoadError(f"cannot read the service-account token {auth.jwt_path}: {exc.strerror}") from None
        try:
            response = client.auth.kubernetes.login(role=auth.role, jwt=jwt, mount_point=auth.mount)
        except hvac.exceptions.VaultError as exc:
            raise KeyLoadError(
                f"Vault kubernetes login as role {auth.role!r} at auth/{auth.mount} failed: {_reason(exc)}"
            ) from None
        except requests.RequestException as exc:
            raise KeyLoadError(f"cannot reach Vault at {self.settings.address}: {type(exc).__name__}") from None
        lease = float(response["auth"].get("lease_duration") or 0)
        # Log in again after 2/3 of the lease (and never less often than every refresh).
        self._login_expires = time.monotonic() + (lease * 2 / 3 if lease else self.settings.refresh_seconds)
        self._client = client
        return client

    def _renew(self, client: Any) -> None:
        """Keep a renewable token alive: renew it when fewer than three refresh periods (plus a
        minute) of its TTL remain. A token that cannot be renewed is left to fail the reads, which
        then say what is wrong; a failed renewal is logged by kind, never with the token."""
        try:
            data = client.auth.token.lookup_self()["data"]
        except (hvac.exceptions.VaultError, requests.RequestException):
            return
        ttl = int(data.get("ttl") or 0)
        if not data.get("renewable") or not ttl or ttl >= 3 * self.settings.refresh_seconds + 60:
            return
        try:
            client.auth.token.renew_self()
        except (hvac.exceptions.VaultError, requests.RequestException) as exc:
            LOG.warning("renewing the Vault token failed: %s", _reason(exc))
        else:
            LOG.info("renewed the Vault token (it had %d s left)", ttl)

    def _token(self) -> str:
        auth = self.settings.auth
        if auth.token_file:
            try:
                token = Path(auth.token_file).read_text().strip()
            except OSError as exc:
                raise KeyLoadError(f"cannot read the Vault token file {auth.token_file}: {exc.strerror}") from None
        else:
            token = os.environ.get(auth.token_env, "")
        if not token:
            raise KeyLoadError(f"no Vault token in {auth.token_file or '$' + auth.token_env}")
        return token

    def _read(self, client: Any, source: KeySource) -> KeyMaterial:
        where = f"masking key {source.name!r} at {_location(source)}"
        try:
            response = client.secrets.kv.v2.read_secret_version(
                path=source.path, mount_point=source.mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            raise KeyLoadError(f"{where}: no such secret (or its latest version is deleted)") from None
        except hvac.exceptions.Forbidden:
            raise KeyLoadError(f"{where}: access denied by Vault policy") from None
        except hvac.exceptions.VaultError as exc:
            raise KeyLoadError(f"{where}: {_reason(exc)}") from None
        except requests.RequestException as exc:
            raise KeyLoadError(
                f"{where}: cannot reach Vault at {self.settings.address} ({type(exc).__name__})"
            ) from None
        data = response["data"]["data"] or {}
        if source.field not in data:
            raise KeyLoadError(f"{where}: the secret has no field {source.field!r}")
        version = int(response["data"]["metadata"]["version"])
        return KeyMaterial(version, decode_key(data[source.field], source.encoding, f"{where} field {source.field!r}"))

    def load(self) -> KeySnapshot:
        """Read every key; raise ``KeyLoadError`` listing every failure (startup: refuse to run)."""
        with self._lock:
            client = self._login()
            keys: dict[str, KeyMaterial] = {}
            problems: list[str] = []
            for source in self.sources:
                try:
                    keys[source.name] = self._read(client, source)
                except KeyLoadError as exc:
                    problems.append(str(exc))
            if problems:
                raise KeyLoadError("; ".join(problems))
            self._publish(keys)
            for source in self.sources:
                LOG.info(
                    "masking key %s loaded from %s (version %d)",
                    source.name,
                    _location(source),
                    keys[source.name].version,
                )
            return self._snapshot

    def refresh(self) -> bool:
        """Read every key again, keeping the last good version of any that fails.

        Returns True if any key changed. Never raises for a key error (logs and counts it).
        """
        with self._lock:
            current = dict(self._snapshot.keys)
            try:
                client = self._login()
            except KeyLoadError as exc:
                for source in self.sources:
                    self.metrics.key_refresh_errors.labels(source.name).inc()
                LOG.error("refreshing masking keys failed, keeping the last good versions: %s", exc)
                return False
            for source in self.sources:
                try:
                    material = self._read(client, source)
                except KeyLoadError as exc:
                    self.metrics.key_refresh_errors.labels(source.name).inc()
                    kept = current.get(source.name)
                    LOG.error(
                        "refreshing failed, keeping version %s: %s", kept.version if kept else "none (no key yet)", exc
                    )
                    if "access denied" in str(exc):
                        self._login_expires = 0.0  # perhaps our token expired: log in again next time
                    continue
                old = current.get(source.name)
                if old is None or old != material:
                    LOG.info(
                        "masking key %s now at version %d (from %s)", source.name, material.version, _location(source)
                    )
                current[source.name] = material
            return self._publish(current)

    def _publish(self, keys: dict[str, KeyMaterial]) -> bool:
        if keys == dict(self._snapshot.keys):
            return False
        self._snapshot = KeySnapshot(self._snapshot.generation + 1, MappingProxyType(keys))
        for name, material in keys.items():
            self.metrics.key_version.labels(name).set(material.version)
        return True

    # --- the timer ------------------------------------------------------------------------

    def start(self) -> None:
        """Refresh every ``refreshSeconds`` on a daemon thread until ``stop()``."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="masking-key-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.settings.refresh_seconds):
            try:
                self.refresh()
            except Exception:  # the timer must outlive any surprise; the error is counted and logged
                LOG.exception("unexpected error refreshing masking keys")
                for source in self.sources:
                    self.metrics.key_refresh_errors.labels(source.name).inc()


def _reason(exc: BaseException) -> str:
    """A Vault error's kind and first message line (Vault's errors name paths, not secrets)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}{': ' + first[:200] if first else ''}"


def _new_client(settings: VaultSettings) -> Any:
    return hvac.Client(url=settings.address, verify=settings.ca_cert or True, timeout=settings.timeout_seconds)
