"""Offsets across destinations, backoff bounds, the checkpoint file, and config errors at start."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from cdc_replicator.cli import main
from cdc_replicator.commitlog.cdc_dir import SegmentFile
from cdc_replicator.contract.checkpoint import CheckpointReport, DestinationProgress
from cdc_replicator.events import Position
from cdc_replicator.pipeline import checkpoint
from cdc_replicator.pipeline.backoff import Backoff
from cdc_replicator.pipeline.offsets import reader_start, releasable

pytestmark = pytest.mark.unit


def test_reader_starts_at_the_lowest_position() -> None:
    assert reader_start({"a": Position(5, 10), "b": Position(3, 99), "c": Position(5, 0)}) == Position(3, 99)
    assert reader_start({"a": Position(5, 10), "b": None}) is None
    assert reader_start({}) is None


def _segment(tmp: Path, segment_id: int, completed: bool) -> SegmentFile:
    log = tmp / f"CommitLog-8-{segment_id}.log"
    log.write_bytes(b"")
    (tmp / f"CommitLog-8-{segment_id}_cdc.idx").write_text("1024\nCOMPLETED\n" if completed else "1024\n")
    return SegmentFile(segment_id, 8, log)


def test_a_segment_goes_only_when_every_destination_is_past_it(tmp_path: Path) -> None:
    segments = [_segment(tmp_path, 1, True), _segment(tmp_path, 2, True), _segment(tmp_path, 3, False)]
    assert [s.segment_id for s in releasable(segments, [Position(3, 0), Position(2, 500)])] == [1]
    assert [s.segment_id for s in releasable(segments, [Position(3, 0), Position(4, 0)])] == [1, 2]
    assert releasable(segments, [Position(9, 0), None]) == []  # a destination never reached: keep all
    assert [s.segment_id for s in releasable(segments, [Position(9, 0)], keep=[1])] == [2]
    assert [s.segment_id for s in releasable(segments, [Position(9, 0)])] == [1, 2]  # 3 is not COMPLETED


def test_backoff_grows_bounded_with_jitter() -> None:
    backoff = Backoff(0.5, 8.0, random.Random(1))
    delays = [backoff.next() for _ in range(30)]
    assert all(0.25 <= d <= 8.0 for d in delays)
    assert max(delays[10:]) > 2.0
    backoff.reset()
    assert backoff.next() <= 0.5


def test_checkpoint_file_is_replaced_whole_and_parses(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "checkpoint.json"
    for n in range(3):
        progress = [DestinationProgress(name="pg", position=f"7:{n}", lag_seconds=0.5, events_total=n)]
        checkpoint.write(path, checkpoint.render("node1", progress))
    report = CheckpointReport.model_validate_json(path.read_text())
    assert report.node == "node1"
    assert report.destinations[0].position == "7:2"
    assert report.updated_at.endswith("Z")
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.json"]


def test_invalid_config_is_refused_at_start_naming_every_bad_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "pipeline: ns/p\n"
        "source: {nodeName: n1, cdcRawPath: /x, contactPoints: [], keyspaces: [ks]}\n"
        "destinations: [{name: Bad_Name, type: mysql, endpoint: x, database: y}]\n"
        "checkpoint: {path: /tmp/c.json, intervalSeconds: 0}\n"
        "tuning: {batchSize: 0, bogus: 1}\n"
    )
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    for field in (
        "source.contactPoints",
        "destinations.0.name",
        "destinations.0.type",
        "checkpoint.intervalSeconds",
        "tuning.batchSize",
        "tuning.bogus",
    ):
        assert field in err, err


def test_missing_config_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_tracing_is_off_by_default_and_otlp_needs_its_exporter() -> None:
    from cdc_replicator.contract.config import ConfigError, Observability
    from cdc_replicator.observability.tracing import tracer
    from opentelemetry import trace

    assert Observability().tracing == "off"
    assert isinstance(tracer("off", None, {}), trace.NoOpTracer)
    try:
        import opentelemetry.exporter.otlp.proto.http  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="otlp"):
            tracer("otlp", None, {})
