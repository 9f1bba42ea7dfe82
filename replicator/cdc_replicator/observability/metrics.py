"""The replicator's Prometheus metrics (names as DESIGN.md lists them).

Every sample is served with the replicator's ``pipeline`` and ``node`` labels (:func:`labelled`):
one Prometheus holds the metrics of many replicators, and the alert rules and the dashboard
shipped with the chart (charts/cdc-operator) name both, whatever scrapes the replicator.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class OptionalGauge(Collector):
    """An unlabelled gauge with no sample until it is set: a limit not known yet must not read as 0
    (``cdc_raw_bytes / cdc_total_space_bytes`` would be +Inf and fire the alert)."""

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self.name, self.documentation = name, documentation
        self.value: float | None = None
        registry.register(self)

    def set(self, value: float | None) -> None:
        self.value = value

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation)
        if self.value is not None:
            family.add_metric([], self.value)
        return [family]


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
        self.total_space = OptionalGauge(
            "cdc_total_space_bytes",
            "The node's cdc_total_space: once cdc_raw holds this much, Cassandra rejects writes to CDC tables "
            "(from source.cdcTotalSpaceBytes, else the node's system_views.settings; absent while unknown).",
            registry=r,
        )
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


class _Relabel(Collector):
    """Serves another registry's samples with constant labels added (a sample's own label wins)."""

    def __init__(self, registry: CollectorRegistry, labels: Mapping[str, str]) -> None:
        self.registry = registry
        self.labels = dict(labels)

    def collect(self) -> Iterable[Metric]:
        for family in self.registry.collect():
            out = copy.copy(family)
            out.samples = [s._replace(labels={**self.labels, **s.labels}) for s in family.samples]
            yield out


def labelled(registry: CollectorRegistry, labels: Mapping[str, str]) -> CollectorRegistry:
    """A registry to expose: ``registry``'s metrics, each sample carrying ``labels`` too. Metrics registered
    on ``registry`` later (masking, snapshot) are served the same way."""
    view = CollectorRegistry(auto_describe=False)
    view.register(_Relabel(registry, labels))
    return view
