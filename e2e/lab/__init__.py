"""The lab: every real service the product talks to, started on one machine.

``python -m e2e.lab up|down|status`` starts Cassandra, PostgreSQL with TimescaleDB,
OpenBao, etcd with kube-apiserver and kube-controller-manager on private ports and
data directories, and reports where each one runs. Tests and the demo read that report.
"""
