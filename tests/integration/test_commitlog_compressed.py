"""LZ4-compressed, version-8 segments written by a real Cassandra, decoded with logical positions.

The lab's ring keeps Cassandra 5.0's defaults (plain version-7 segments); the ``lz4`` node
is a one-node cluster of its own with ``commitlog_compression: LZ4Compressor`` and
``storage_compatibility_mode: NONE``, so Cassandra itself writes the segments read here.
Compressed sections reach the file whole at each sync (every 10 s in the lab), so these
tests wait for the sync rather than reading ahead.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cdc_replicator.commitlog.errors import CorruptSegmentError
from cdc_replicator.commitlog.segment import Segment

from tests.integration.commitlog.helpers import (
    create_keyspace,
    drop_keyspaces,
    only,
    registry_for,
    run,
    start_position,
    unique_keyspace,
    wait_for_events,
)

pytestmark = pytest.mark.integration

ROWS = 40
# Repetitive text compresses well, so logical offsets run far past the file's physical size.
FILLER = "compressible " * 150


@pytest.fixture(scope="module")
def lz4_keyspace(lz4_cql_session: Any) -> Iterator[str]:
    name = unique_keyspace("lz4")
    create_keyspace(lz4_cql_session, name, 1)
    yield name
    drop_keyspaces(lz4_cql_session, name)


@pytest.fixture(scope="module")
def lz4_cdc_raw(cassandra_lz4_node: dict[str, Any]) -> Path:
    return Path(cassandra_lz4_node["cdc_raw"])


@pytest.fixture(scope="module")
def written(lz4_cql_session: Any, lz4_keyspace: str, lz4_cdc_raw: Path) -> dict[str, Any]:
    """Rows written through CQL and the events decoded from the node's compressed segments."""
    session, ks = lz4_cql_session, lz4_keyspace
    run(
        session,
        f"CREATE TABLE {ks}.docs (pk int, ck int, v text, m map<int, text>, PRIMARY KEY (pk, ck)) WITH cdc = true",
    )
    registry = registry_for(session)
    after = start_position(lz4_cdc_raw)
    for i in range(ROWS):
        run(session, f"INSERT INTO {ks}.docs (pk, ck, v, m) VALUES ({i % 4}, {i}, '{FILLER}{i}', {{{i}: 'x{i}'}})")
    run(session, f"DELETE FROM {ks}.docs WHERE pk = 0 AND ck = 0")
    registry.refresh(force=True)
    events = only(
        wait_for_events(lz4_cdc_raw, registry, ks, after, lambda e: len(only(e, "docs")) >= ROWS + 1, timeout_s=60),
        "docs",
    )
    return {"events": events, "registry": registry, "keyspace": ks}


def _segment_path(cdc_raw: Path, segment_id: int) -> Path:
    return next(cdc_raw.glob(f"CommitLog-*-{segment_id}.log"))


def test_cassandra_writes_version_8_lz4_segments_the_reader_decodes(written: dict[str, Any], lz4_cdc_raw: Path) -> None:
    events = written["events"]
    upserts = [e for e in events if e.operation == "upsert"]
    deletes = [e for e in events if e.operation == "delete_row"]
    assert len(upserts) == ROWS
    assert len(deletes) == 1
    assert dict(deletes[0].clustering) == {"ck": 0}
    assert sorted(dict(e.clustering)["ck"] for e in upserts) == list(range(ROWS))
    for e in upserts:
        ck = dict(e.clustering)["ck"]
        assert dict(e.partition_key) == {"pk": ck % 4}
        assert e.cells["v"].value == f"{FILLER}{ck}"
    for segment_id in {e.position.segment_id for e in events}:
        path = _segment_path(lz4_cdc_raw, segment_id)
        assert path.name.startswith("CommitLog-8-")
        with Segment(path) as segment:
            assert segment.compressed
            assert segment.descriptor.version == 8


def test_positions_are_logical_offsets_and_resume_from_them(written: dict[str, Any], lz4_cdc_raw: Path) -> None:
    events = written["events"]
    positions = sorted({e.position for e in events})
    last = positions[-1]
    path = _segment_path(lz4_cdc_raw, last.segment_id)
    # Offsets in Cassandra's uncompressed buffer, as its idx file counts them, not bytes of the file.
    assert last.position > path.stat().st_size
    with Segment(path) as segment:
        in_segment = [p.position for p in positions if p.segment_id == last.segment_id]
        middle = in_segment[len(in_segment) // 2]
        resumed = [e.position for e in segment.entries(after=middle)]
        assert [p for p in in_segment if p > middle] == [p for p in resumed if p in set(in_segment)]
        assert all(p > middle for p in resumed)


def test_a_damaged_block_is_reported_with_the_file(written: dict[str, Any], lz4_cdc_raw: Path, tmp_path: Path) -> None:
    last = max(e.position for e in written["events"])
    original = _segment_path(lz4_cdc_raw, last.segment_id)
    copy = tmp_path / original.name
    shutil.copyfile(original, copy)
    damaged = bytearray(copy.read_bytes())
    # Inside the first compressed section: past the header, the marker and the length.
    header_end = 4 + 8 + 2 + int.from_bytes(damaged[12:14], "big") + 4
    damaged[header_end + 8 + 4 + 16] ^= 0xFF
    copy.write_bytes(bytes(damaged))
    with Segment(copy) as segment, pytest.raises(CorruptSegmentError) as refused:
        list(segment.entries())
    assert copy.name in str(refused.value)
