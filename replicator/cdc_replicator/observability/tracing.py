"""OpenTelemetry spans per batch: off by default (a no-op tracer costs nothing on the hot path)."""

from __future__ import annotations

from opentelemetry import trace

from cdc_replicator.contract.config import ConfigError


def tracer(mode: str, endpoint: str | None, attributes: dict[str, str]) -> trace.Tracer:
    """A tracer for ``mode`` (off, console or otlp); spans carry ``attributes`` as resource attributes."""
    if mode == "off":
        return trace.NoOpTracer()
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415 - only when tracing is on
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter  # noqa: PLC0415

    exporter: SpanExporter
    if mode == "console":
        exporter = ConsoleSpanExporter()
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]  # noqa: PLC0415 - optional
                OTLPSpanExporter,
            )
        except ImportError as exc:
            raise ConfigError(
                "observability.tracing is otlp but opentelemetry-exporter-otlp-proto-http is not installed"
            ) from exc
        exporter = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "cdc-replicator", **attributes}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider.get_tracer("cdc_replicator")
