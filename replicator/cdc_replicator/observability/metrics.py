"""The replicator's Prometheus metrics (names as DESIGN.md lists them)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "cdc_events_processed", "Events committed to a destination.", ["destination", "table"], registry=r
        )
        self.lag = Gauge(
            "cdc_replication_lag_seconds",
            "Now minus the Cassandra write time of the last committed event (0 when caught up).",
            ["destination"],
            registry=r,
        )
        self.errors = Counter(
            "cdc_errors", "Errors by destination and kind.", ["destination", "error_type"], registry=r
        )
        self.backlog = Gauge(
            "cdc_backlog_depth", "Events read but not yet committed to the destination.", ["destination"], registry=r
        )
        self.raw_bytes = Gauge("cdc_raw_bytes", "Bytes of segments in cdc_raw.", registry=r)
        self.segments = Gauge("cdc_segments_pending", "Segments in cdc_raw not yet released.", registry=r)
        self.released = Counter("cdc_segments_released", "Segments deleted from cdc_raw.", registry=r)
        self.dead_letters = Counter(
            "cdc_dead_letters", "Events sent to a destination's dead-letter table.", ["destination"], registry=r
        )
        self.batch_size = Histogram(
            "cdc_batch_size",
            "Events per destination batch.",
            ["destination"],
            buckets=(1, 10, 100, 500, 1000, 5000, 10000, 50000, 100000),
            registry=r,
        )
        self.commit_seconds = Histogram(
            "cdc_commit_latency_seconds",
            "Time to write and commit one batch.",
            ["destination"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.event_lag = Histogram(
            "cdc_event_lag_seconds",
            "Per event: destination commit time minus its Cassandra write time.",
            ["destination"],
            buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 300),
            registry=r,
        )
        self.up = Gauge("cdc_destination_up", "1 while the destination accepts writes.", ["destination"], registry=r)
