"""Table schemas from ``system_schema``, keyed by table id, kept across ALTER and DROP."""

from cdc_replicator.schema.model import ColumnDef, TableSchema
from cdc_replicator.schema.registry import SchemaRegistry, SchemaSnapshot

__all__ = ["ColumnDef", "SchemaRegistry", "SchemaSnapshot", "TableSchema"]
