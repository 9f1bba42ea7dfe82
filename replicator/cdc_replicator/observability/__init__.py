"""Metrics, the /metrics and /health endpoint, JSON logs and optional OpenTelemetry spans."""
