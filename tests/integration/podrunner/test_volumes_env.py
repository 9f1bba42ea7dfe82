"""A pod's ConfigMap, Secret, projected service-account token, emptyDir and env reach its process."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from e2e.podrunner.api import PodRunner
from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

# Runs as the container: in-cluster config from the projected token at the standard path, then
# a SelfSubjectReview (allowed to every authenticated user) says who the API server thinks we are.
READER = f"""
import json, os, pathlib, stat
from kubernetes import client, config
config.load_incluster_config()
review = client.AuthenticationV1Api().create_self_subject_review(client.V1SelfSubjectReview())
conf = pathlib.Path("/podrunner-test/etc/settings/app.conf")
try:
    pathlib.Path("/podrunner-test/etc/secret/new").write_text("x")
    read_only = False
except OSError:
    read_only = True
result = {{
    "user": review.status.user_info.username,
    "namespace_file": pathlib.Path("{SA_DIR}/namespace").read_text(),
    "has_ca": pathlib.Path("{SA_DIR}/ca.crt").read_text().startswith("-----BEGIN CERTIFICATE-----"),
    "settings": conf.read_text(),
    "settings_mode": stat.S_IMODE(conf.stat().st_mode),
    "settings_keys": sorted(p.name for p in conf.parent.iterdir()),
    "password_file": pathlib.Path("/podrunner-test/etc/secret/password").read_text(),
    "secret_read_only": read_only,
    "env": {{k: os.environ.get(k) for k in
            ["GREETING", "TWICE", "PASSWORD", "LEVEL", "CFG_level", "POD_NAME", "POD_NAMESPACE", "POD_IP"]}},
}}
pathlib.Path("/podrunner-test/out/result.json").write_text(json.dumps(result))
"""


def reader_pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "reader"},
        "spec": {
            "serviceAccountName": "reader",
            "automountServiceAccountToken": False,
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "reader",
                    "image": "python:3.11",
                    "command": ["python3", "-c", READER],
                    "env": [
                        {"name": "GREETING", "value": "hello"},
                        {"name": "TWICE", "value": "$(GREETING) $(GREETING)"},
                        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                        {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}}},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    ],
                    "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "settings"}}],
                    "volumeMounts": [
                        {"name": "settings", "mountPath": "/podrunner-test/etc/settings", "readOnly": True},
                        {"name": "creds", "mountPath": "/podrunner-test/etc/secret", "readOnly": True},
                        {"name": "api-access", "mountPath": SA_DIR, "readOnly": True},
                        {"name": "out", "mountPath": "/podrunner-test/out"},
                    ],
                }
            ],
            "volumes": [
                {
                    "name": "settings",
                    "configMap": {
                        "name": "settings",
                        "items": [{"key": "app.conf", "path": "app.conf", "mode": 0o600}],
                    },
                },
                {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}},
                {
                    "name": "api-access",
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                            {
                                "downwardAPI": {
                                    "items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]
                                }
                            },
                        ]
                    },
                },
                {"name": "out", "emptyDir": {}},
            ],
        },
    }


def test_pod_reads_its_configmap_secret_token_and_env(
    kube_api: Any, kube_namespace: str, pod_runner: PodRunner
) -> None:
    core = client.CoreV1Api(kube_api)
    ns = kube_namespace
    core.create_namespaced_service_account(ns, {"metadata": {"name": "reader"}})
    core.create_namespaced_config_map(
        ns, {"metadata": {"name": "settings"}, "data": {"app.conf": "mode = strict\n", "level": "debug"}}
    )
    core.create_namespaced_secret(ns, {"metadata": {"name": "creds"}, "stringData": {"password": "s3cret"}})
    core.create_namespaced_pod(ns, reader_pod())

    def finished() -> Any:
        pod = core.read_namespaced_pod("reader", ns)
        return pod if pod.status.phase in ("Succeeded", "Failed") else None

    pod = eventually(finished, 90, "the reader pod to finish")
    assert pod.status.phase == "Succeeded", pod_runner.log(ns, "reader", "reader")
    (status,) = pod.status.container_statuses
    assert status.state.terminated.exit_code == 0
    assert status.state.terminated.reason == "Completed"

    result = json.loads((pod_runner.volume(ns, "reader", "out") / "result.json").read_text())
    assert result["user"] == f"system:serviceaccount:{ns}:reader"
    assert result["namespace_file"] == ns
    assert result["has_ca"]
    assert result["settings"] == "mode = strict\n"
    assert result["settings_mode"] == 0o600
    assert result["settings_keys"] == ["app.conf"]  # items: only the listed key
    assert result["password_file"] == "s3cret"
    assert result["secret_read_only"]
    assert result["env"] == {
        "GREETING": "hello",
        "TWICE": "hello hello",
        "PASSWORD": "s3cret",
        "LEVEL": "debug",
        "CFG_level": "debug",
        "POD_NAME": "reader",
        "POD_NAMESPACE": ns,
        "POD_IP": "127.0.0.1",
    }
