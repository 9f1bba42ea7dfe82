"""Change data capture from Apache Cassandra's commitlog into Postgres, TimescaleDB and ClickHouse."""

__version__ = "0.1.0"
