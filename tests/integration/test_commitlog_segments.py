"""Segments as the real Cassandra writes them: headers, idx, read-ahead, resume, corruption, release."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from cdc_replicator.commitlog.cdc_dir import list_segments, release, segment_file
from cdc_replicator.commitlog.descriptor import crc_ints
from cdc_replicator.commitlog.errors import CorruptSegmentError, UnsupportedSegmentError
from cdc_replicator.commitlog.mutation import MutationDecoder
from cdc_replicator.commitlog.reader import CommitLogReader, ReadError
from cdc_replicator.commitlog.segment import Entry, Segment
from cdc_replicator.events import ChangeEvent, Position
from cdc_replicator.schema.registry import SchemaRegistry

from tests.integration.commitlog import fixtures
from tests.integration.commitlog.helpers import read_events, run, start_position, wait_for_events

pytestmark = pytest.mark.integration
cdc_raw, keyspace, registry = fixtures.cdc_raw, fixtures.keyspace, fixtures.registry


@pytest.fixture(scope="module")
def written(cql_session: Any, keyspace: str, cdc_raw: Path) -> tuple[Position | None, int]:
    """Twenty rows in one table of this module's keyspace; returns where they start."""
    run(cql_session, f"CREATE TABLE {keyspace}.seg (pk int PRIMARY KEY, v text) WITH cdc = true")
    after = start_position(cdc_raw)
    for i in range(20):
        run(cql_session, f"INSERT INTO {keyspace}.seg (pk, v) VALUES ({i}, 'value {i}')")
    return after, 20


def _entries_of(path: Path, keyspace_events: list[ChangeEvent]) -> list[Entry]:
    wanted = {e.position.position for e in keyspace_events if e.position.segment_id == segment_file(path).segment_id}  # type: ignore[union-attr]
    with Segment(path) as segment:
        return [e for e in segment.entries(read_ahead=True) if e.position in wanted]


def _events(
    cdc_raw: Path, registry: SchemaRegistry, keyspace: str, written: tuple[Position | None, int]
) -> list[ChangeEvent]:
    after, count = written
    return wait_for_events(cdc_raw, registry, keyspace, after, lambda evs: len(evs) >= count)


def test_headers_and_idx_of_real_segments(cdc_raw: Path, written: tuple[Position | None, int]) -> None:
    segments = list_segments(cdc_raw)
    assert segments
    with_idx = [s for s in segments if s.idx.exists()]
    assert with_idx, "the lab's node has synced CDC data at least once"
    for source in with_idx:
        with Segment(source.log) as segment:
            assert segment.descriptor.version in (7, 8)
            assert segment.segment_id == source.segment_id
            assert segment.descriptor.compression is None
            state = source.idx_state()
            assert state is not None
            durable = list(segment.entries(limit=state.offset))
            assert all(e.durable for e in durable)
            assert all(e.position <= state.offset for e in durable)


def test_read_ahead_sees_acknowledged_writes_before_the_sync(
    cql_session: Any, keyspace: str, cdc_raw: Path, registry: SchemaRegistry
) -> None:
    run(cql_session, f"CREATE TABLE {keyspace}.ahead (pk int PRIMARY KEY, v int) WITH cdc = true")
    registry.refresh(force=True)
    ahead_of_idx = 0
    for i in range(5):
        after = start_position(cdc_raw)
        run(cql_session, f"INSERT INTO {keyspace}.ahead (pk, v) VALUES ({i}, {i})")
        # Read once, right away: no waiting for the commitlog sync (every 10 s).
        events = [e for e in read_events(cdc_raw, registry, keyspace, after) if e.table == "ahead"]
        assert [e.partition_key["pk"] for e in events] == [i]
        (event,) = events
        source = next(s for s in list_segments(cdc_raw) if s.segment_id == event.position.segment_id)
        state = source.idx_state()
        if state is None or state.offset < event.position.position:
            ahead_of_idx += 1
            assert not event.durable
            durable_only = read_events(cdc_raw, registry, keyspace, after, read_ahead=False)
            assert event.position not in {e.position for e in durable_only}
    assert ahead_of_idx > 0, "at least one write was read before the sync made it durable"


def test_resume_yields_only_what_follows(
    cdc_raw: Path, registry: SchemaRegistry, keyspace: str, written: tuple[Position | None, int]
) -> None:
    events = [e for e in _events(cdc_raw, registry, keyspace, written) if e.table == "seg"]
    assert len(events) == 20
    positions = [e.position for e in events]
    assert positions == sorted(positions)
    assert len(set(positions)) == 20
    middle = positions[9]
    rest = [e for e in read_events(cdc_raw, registry, keyspace, middle) if e.table == "seg"]
    assert [e.position for e in rest] == positions[10:]
    after_last = read_events(cdc_raw, registry, keyspace, positions[-1])
    assert [e for e in after_last if e.table == "seg"] == []


def _copy(source: Path, directory: Path) -> Path:
    directory.mkdir(exist_ok=True)
    target = directory / source.name
    shutil.copyfile(source, target)
    return target


def _dump(*args: str, cassandra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cdc_replicator.cli", "dump", *args, "--cassandra", cassandra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_corruption_is_reported_with_file_offset_and_reason(
    cdc_raw: Path,
    registry: SchemaRegistry,
    keyspace: str,
    written: tuple[Position | None, int],
    tmp_path: Path,
    cassandra_node: dict[str, Any],
) -> None:
    events = [e for e in _events(cdc_raw, registry, keyspace, written) if e.table == "seg"]
    segment_id = events[-1].position.segment_id
    (source,) = [s for s in list_segments(cdc_raw) if s.segment_id == segment_id]
    entries = _entries_of(source.log, events)
    victim = entries[len(entries) // 2]
    cassandra = f"{cassandra_node['address']}:{cassandra_node['cql_port']}"
    # Corruption is only corruption where Cassandra declared the data durable: wait for the
    # commitlog sync (every 10 s) to cover the victim.
    deadline = time.monotonic() + 30
    while (state := source.idx_state()) is None or state.offset < victim.position:
        assert time.monotonic() < deadline, "the commitlog sync never covered the entry"
        time.sleep(0.5)

    flipped = _copy(source.log, tmp_path / "flipped")
    with flipped.open("r+b") as f:
        f.seek(victim.start + 12)
        byte = f.read(1)
        f.seek(victim.start + 12)
        f.write(bytes([byte[0] ^ 0xFF]))
    with Segment(flipped) as segment, pytest.raises(CorruptSegmentError) as caught:
        list(segment.entries())
    assert caught.value.offset == victim.start
    assert "CRC" in caught.value.reason
    # Tolerant reading reports the corrupt section and goes on with the next ones.
    reported: list[CorruptSegmentError] = []
    with Segment(flipped) as segment, Segment(source.log) as original:
        tolerant = [e.position for e in segment.entries(on_corrupt=reported.append)]
        intact = [e.position for e in original.entries(read_ahead=True)]
    assert [r.offset for r in reported] == [victim.start]
    assert [p for p in intact if p <= victim.start] == [p for p in tolerant if p <= victim.start]
    assert victim.position not in tolerant
    assert set(tolerant) <= set(intact)

    result = _dump(str(flipped), cassandra=cassandra)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(flipped) in lines[0]
    assert f"offset {victim.start}" in lines[0]
    assert "Traceback" not in result.stderr

    truncated = _copy(source.log, tmp_path / "truncated")
    os.truncate(truncated, victim.start + 20)
    result = _dump(str(truncated), cassandra=cassandra)
    assert result.returncode == 2
    assert "truncated" in result.stderr or "outside the file" in result.stderr

    header = _copy(source.log, tmp_path / "header")
    with header.open("r+b") as f:
        f.seek(2)
        f.write(b"\x01")
    result = _dump(str(header), cassandra=cassandra)
    assert result.returncode == 2
    assert "offset" in result.stderr

    # A future descriptor version, with a valid header CRC: refused as unsupported.
    future = _copy(source.log, tmp_path / "future")
    with future.open("r+b") as f:
        head = f.read(14)
        _, seg_id, param_len = struct.unpack(">iqH", head)
        params = f.read(param_len)
        f.seek(0)
        f.write(struct.pack(">i", 9))
        f.seek(14 + param_len)
        f.write(struct.pack(">I", zlib.crc32(params, crc_ints(9, seg_id, seg_id >> 32, param_len))))
    with pytest.raises(UnsupportedSegmentError, match="version 9"):
        Segment(future)
    result = _dump(str(future), cassandra=cassandra)
    assert result.returncode == 2
    assert "version 9" in result.stderr

    not_a_segment = tmp_path / "notes.txt"
    not_a_segment.write_text("hello\n" * 100)
    result = _dump(str(not_a_segment), cassandra=cassandra)
    assert result.returncode == 2
    assert "not a commitlog segment" in result.stderr

    # Following a directory, a corrupt segment is reported once and skipped.
    reader = CommitLogReader(MutationDecoder(registry, include_keyspace=lambda ks: ks == keyspace))
    polls = itertools.count()
    items = list(reader.follow(flipped.parent, poll_s=0.01, stop=lambda: next(polls) > 3))
    errors = [i for i in items if isinstance(i, ReadError)]
    assert len(errors) == 1
    assert errors[0].error.offset == victim.start
    assert reader.stats.errors == 1


def test_dump_prints_events_as_json_lines(
    cdc_raw: Path,
    registry: SchemaRegistry,
    keyspace: str,
    written: tuple[Position | None, int],
    cassandra_node: dict[str, Any],
) -> None:
    events = [e for e in _events(cdc_raw, registry, keyspace, written) if e.table == "seg"]
    cassandra = f"{cassandra_node['address']}:{cassandra_node['cql_port']}"
    result = _dump(str(cdc_raw), "--table", f"{keyspace}.seg", "--from", str(events[4].position), cassandra=cassandra)
    assert result.returncode == 0, result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["partition_key"]["pk"] for p in printed] == list(range(5, 20))
    assert all(p["op"] == "upsert" for p in printed)
    assert printed[0]["cells"]["v"]["value"] == "value 5"
    assert printed[0]["position"] == str(events[5].position)


def test_release_deletes_the_log_and_its_idx(cdc_raw: Path, tmp_path: Path) -> None:
    source = next(s for s in list_segments(cdc_raw) if s.idx.exists())
    directory = tmp_path / "cdc_raw"
    log = _copy(source.log, directory)
    shutil.copyfile(source.idx, directory / source.idx.name)
    (copy,) = list_segments(directory)
    assert copy.log == log
    assert copy.idx.exists()
    release(copy)
    assert list(directory.iterdir()) == []


def test_follow_picks_up_writes_as_they_happen(
    cql_session: Any, keyspace: str, cdc_raw: Path, registry: SchemaRegistry
) -> None:
    run(cql_session, f"CREATE TABLE {keyspace}.live (pk int PRIMARY KEY, v int) WITH cdc = true")
    registry.refresh(force=True)
    after = start_position(cdc_raw)
    reader = CommitLogReader(
        MutationDecoder(registry, lambda t: t.name == "live", lambda ks: ks == keyspace), read_ahead=True
    )
    seen: list[ChangeEvent] = []
    deadline = time.monotonic() + 30

    def write_later() -> None:
        for i in range(5):
            run(cql_session, f"INSERT INTO {keyspace}.live (pk, v) VALUES ({i}, {i})")
            time.sleep(0.2)

    writer = threading.Thread(target=write_later)
    writer.start()
    try:
        for item in reader.follow(
            cdc_raw, after, poll_s=0.05, stop=lambda: len(seen) >= 5 or time.monotonic() > deadline
        ):
            assert not isinstance(item, ReadError)
            seen.append(item)
    finally:
        writer.join()
    assert [e.partition_key["pk"] for e in seen] == [0, 1, 2, 3, 4]
