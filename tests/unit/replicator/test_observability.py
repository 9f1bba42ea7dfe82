"""The replicator's exposition: pipeline and node on every sample, cdc_total_space parsed from Cassandra's
settings and absent until known, and counters the alerts rely on present from the start at 0."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cdc_replicator.app import App
from cdc_replicator.contract.config import ReplicatorConfig
from cdc_replicator.observability.metrics import Metrics, labelled
from cdc_replicator.schema.total_space import parse_setting
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.unit


def samples(metrics: Metrics) -> dict[str, list[dict[str, str]]]:
    text = generate_latest(labelled(metrics.registry, {"pipeline": "shop/shop", "node": "node1"})).decode()
    out: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append(s.labels)
    return out


def test_every_sample_carries_pipeline_and_node_and_keeps_its_own_labels() -> None:
    metrics = Metrics()
    metrics.dead_letters.labels("warehouse").inc(3)
    metrics.raw_bytes.set(1024)
    got = samples(metrics)
    assert got["cdc_dead_letters_total"] == [{"pipeline": "shop/shop", "node": "node1", "destination": "warehouse"}]
    assert got["cdc_raw_bytes"] == [{"pipeline": "shop/shop", "node": "node1"}]
    # A metric registered later on the same registry (masking, the snapshot) is labelled too.
    from prometheus_client import Gauge

    Gauge("cdc_test_late", "registered after labelled()", ["table"], registry=metrics.registry).labels("t").set(1)
    assert samples(metrics)["cdc_test_late"] == [{"pipeline": "shop/shop", "node": "node1", "table": "t"}]


def test_cdc_total_space_is_absent_until_known() -> None:
    metrics = Metrics()
    assert "cdc_total_space_bytes" not in samples(metrics)  # not 0: cdc_raw_bytes / 0 would fire the alert
    metrics.total_space.set(2 << 30)
    assert samples(metrics)["cdc_total_space_bytes"] == [{"pipeline": "shop/shop", "node": "node1"}]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("cdc_total_space", "4096MiB", 4096 << 20),
        ("cdc_total_space", "2GiB", 2 << 30),
        ("cdc_total_space", "512KiB", 512 << 10),
        ("cdc_total_space", "1000B", 1000),
        ("cdc_total_space_in_mb", "2048", 2048 << 20),
        ("cdc_total_space", "lots", None),
        ("cdc_total_space_in_mb", "2048MiB", None),
        ("cdc_total_space", None, None),
    ],
)
def test_settings_values_of_cassandra_41_and_50(name: str, value: str | None, expected: int | None) -> None:
    assert parse_setting(name, value) == expected


def config(tmp_path: Path, **source: object) -> ReplicatorConfig:
    return ReplicatorConfig.model_validate(
        {
            "pipeline": "shop/shop",
            "source": {"nodeName": "node1", "cdcRawPath": str(tmp_path), "contactPoints": ["db"],
                       "keyspaces": ["shop"], **source},
            "destinations": [{"name": "pg", "type": "postgres", "endpoint": "pg:5432", "database": "d"}],
            "checkpoint": {"path": str(tmp_path / "checkpoint.json")},
        }
    )  # fmt: skip


def test_a_configured_cdc_total_space_wins(tmp_path: Path) -> None:
    app = App(config(tmp_path, cdcTotalSpaceBytes=3 << 30))
    asyncio.run(app.housekeeping.refresh_total_space())
    assert app.metrics.total_space.value == 3 << 30


def test_cdc_total_space_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cdcTotalSpaceBytes"):
        config(tmp_path, cdcTotalSpaceBytes=0)
