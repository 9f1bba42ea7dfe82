"""Masking of PII/PHI in change events before anything leaves the replicator."""
