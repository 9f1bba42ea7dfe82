"""The checkpoint sidecar: publish the replicator's checkpoint file into the node's ConfigMap.

    cdc-operator checkpoint-sidecar --file /var/run/cdc/checkpoint.json --configmap shop-node1-checkpoint

It runs next to the replicator with a service account that may ``get`` and ``patch`` that one
ConfigMap. Every ``--interval`` seconds it reads the file and, when its content changed, patches
the ConfigMap's ``checkpoint.json`` key. The file is copied verbatim: the replicator owns its
format (``cdc_replicator.contract.checkpoint.CheckpointReport``), the operator interprets it. A missing or
half-written file is skipped, not fatal: the replicator may not have committed anything yet.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from cdc_operator import kube
from cdc_operator.render.names import CHECKPOINT_DATA_KEY

log = logging.getLogger("cdc_operator.sidecar")

MAX_BYTES = 512 * 1024  # ConfigMaps hold 1 MiB; a checkpoint is a few KiB


def read_checkpoint(path: Path) -> str | None:
    """The file's text if it is a complete JSON document, else None."""
    try:
        text = path.read_text()
    except OSError:
        return None
    if len(text) > MAX_BYTES:
        log.warning("checkpoint file %s is %d bytes; not published", path, len(text))
        return None
    try:
        json.loads(text)
    except ValueError:
        return None  # caught mid-write by a replicator that does not rename atomically
    return text


def publish(api: Any, namespace: str, configmap: str, text: str) -> None:
    body = {"data": {CHECKPOINT_DATA_KEY: text}}
    client.CoreV1Api(api).patch_namespaced_config_map(configmap, namespace, body)


def run(path: Path, namespace: str, configmap: str, interval: float, stop: threading.Event) -> None:
    api = kube.api_client()
    last: str | None = None
    while not stop.is_set():
        text = read_checkpoint(path)
        if text is not None and text != last:
            try:
                publish(api, namespace, configmap, text)
                last = text
            except ApiException as exc:
                log.warning("cannot patch ConfigMap %s/%s: %s %s", namespace, configmap, exc.status, exc.reason)
            except OSError as exc:
                log.warning("cannot reach the API server: %s", exc)
        stop.wait(interval)


def main(file: str, configmap: str, namespace: str | None, interval: float) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    ns = namespace or os.environ.get("POD_NAMESPACE")
    if not ns:
        log.error("no namespace: pass --namespace or set POD_NAMESPACE")
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("publishing %s into ConfigMap %s/%s every %.1fs", file, ns, configmap, interval)
    run(Path(file), ns, configmap, interval, stop)
    return 0
