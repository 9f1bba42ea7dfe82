"""Decode benchmark: real commitlog segments -> change events, on one core.

    python -m bench.decode --corpus DIR --cassandra HOST:PORT
        decode every segment in DIR and print one JSON line:
        {"bench": "decode", "mutations_per_s": ..., "mb_per_s": ..., "peak_rss_mb": ...}

    python -m bench.decode --corpus DIR --cassandra HOST:PORT --generate-mb 200 --cdc-raw NODE_CDC_RAW
        first write a corpus through that node (rows of 8 columns, a list and a map, in
        keyspace "bench"), then copy its completed CDC segments into DIR and release them.

The schema comes from the node's system_schema, so decode against the node that wrote
the corpus. mb_per_s counts the framed entry bytes read (10^6 bytes per MB); the cpu_*
figures divide by the process's CPU time instead of wall time (fairer on a busy machine).
"""

from __future__ import annotations

import argparse
import decimal
import json
import random
import resource
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from cdc_replicator.commitlog.cdc_dir import list_segments, release
from cdc_replicator.commitlog.errors import UnknownTableError
from cdc_replicator.commitlog.mutation import MutationDecoder
from cdc_replicator.commitlog.segment import Segment
from cdc_replicator.contract.config import CassandraCluster
from cdc_replicator.schema.loader import load_snapshot
from cdc_replicator.schema.registry import SchemaRegistry
from cdc_replicator.schema.session import connect_cassandra

KEYSPACE = "bench"


def _session(address: str) -> Any:
    return connect_cassandra(CassandraCluster(contact_points=[address]))


def generate(session: Any, cdc_raw: Path, corpus: Path, megabytes: int) -> None:
    from cassandra.concurrent import execute_concurrent_with_args  # noqa: PLC0415

    # Every node of the ring holds every row, so this node's cdc_raw sees all of them.
    nodes = 1 + len(session.execute("SELECT peer FROM system.peers_v2").all())
    replication = f"{{'class': 'SimpleStrategy', 'replication_factor': {nodes}}}"
    session.execute(f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} WITH replication = {replication}")
    session.execute(
        f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.events (tenant int, id timeuuid, kind text, amount decimal, "
        "score double, count bigint, active boolean, at timestamp, tags list<text>, attrs map<text, int>, "
        "PRIMARY KEY (tenant, id)) WITH cdc = true"
    )
    insert = session.prepare(
        f"INSERT INTO {KEYSPACE}.events (tenant, id, kind, amount, score, count, active, at, tags, attrs) "  # noqa: S608
        "VALUES (?, ?, ?, ?, ?, ?, ?, toTimestamp(now()), ?, ?)"
    )
    rng = random.Random(1)  # noqa: S311 - test data
    corpus.mkdir(parents=True, exist_ok=True)
    copied = sum(p.stat().st_size for p in corpus.glob("*.log"))
    kinds = ["order", "refund", "page_view", "signup", "login", "checkout"]
    while copied < megabytes * 1_000_000:
        rows = [
            (
                rng.randint(0, 999),
                uuid.uuid1(),
                rng.choice(kinds) + "-" + "x" * rng.randint(0, 40),
                decimal.Decimal(f"{rng.randint(0, 10**6)}.{rng.randint(0, 99):02d}"),
                rng.random(),
                rng.getrandbits(40),
                rng.random() < 0.5,
                [rng.choice(kinds) for _ in range(rng.randint(0, 3))],
                {rng.choice(kinds): rng.randint(0, 100) for _ in range(rng.randint(0, 3))},
            )
            for _ in range(20_000)
        ]
        execute_concurrent_with_args(session, insert, rows, concurrency=64, raise_on_first_error=True)
        for source in list_segments(cdc_raw):
            state = source.idx_state()
            if state is not None and state.completed:
                shutil.copyfile(source.log, corpus / source.log.name)
                release(source)
                copied += (corpus / source.log.name).stat().st_size
                print(f"corpus: {copied / 1e6:.0f} MB", file=sys.stderr)


def run(corpus: Path, session: Any) -> dict[str, Any]:
    registry = SchemaRegistry(lambda: load_snapshot(session), min_refresh_interval_s=3600)
    decoder = MutationDecoder(registry, include_keyspace=lambda ks: ks == KEYSPACE)
    decode = decoder.decode
    mutations = events = consumed = skipped = 0
    segments = sorted(corpus.glob("CommitLog-*.log"))
    start = time.perf_counter()
    cpu_start = time.process_time()
    for path in segments:
        with Segment(path) as segment:
            version = segment.descriptor.messaging_version
            for entry in segment.entries():
                consumed += len(entry.data) + 12
                try:
                    decoded = decode(entry, version)
                except UnknownTableError:
                    skipped += 1
                    continue
                if decoded:
                    mutations += 1
                    events += len(decoded)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    return {
        "bench": "decode",
        "mutations_per_s": round(mutations / elapsed),
        "mb_per_s": round(consumed / 1e6 / elapsed, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "segments": len(segments),
        "mutations": mutations,
        "events": events,
        "entry_mb": round(consumed / 1e6, 1),
        "seconds": round(elapsed, 2),
        # On a shared machine wall time includes waiting for the CPU; these use this
        # process's own CPU time (it is single-threaded: one core).
        "cpu_seconds": round(cpu, 2),
        "cpu_mutations_per_s": round(mutations / cpu),
        "cpu_mb_per_s": round(consumed / 1e6 / cpu, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--cassandra", required=True, metavar="HOST:PORT")
    parser.add_argument("--generate-mb", type=int, default=0)
    parser.add_argument("--cdc-raw", type=Path)
    args = parser.parse_args()
    session = _session(args.cassandra)
    if args.generate_mb:
        if args.cdc_raw is None:
            parser.error("--generate-mb needs --cdc-raw")
        generate(session, args.cdc_raw, args.corpus, args.generate_mb)
    print(json.dumps(run(args.corpus, session)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
