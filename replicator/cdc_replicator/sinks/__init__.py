"""Destinations: one sink per destination type behind ``base.Sink``.

- ``layout``   how a Cassandra table's state is kept (pure data from its schema)
- ``merge``    folding events into per-key last-writer-wins states (pure, shared by all sinks)
- ``pgtypes``  the CQL -> Postgres type mapping (documented there)
- ``pgschema`` the SQL of base tables, merges and current-state views
- ``postgres`` the Postgres sink (asyncpg)
"""
