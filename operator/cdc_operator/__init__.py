"""Kubernetes operator reconciling CdcPipeline and MaskingPolicy resources into replicators."""

__version__ = "0.1.0"
