"""CQL types: parsing the type strings of ``system_schema`` and decoding serialized values."""

from cdc_replicator.cql.decode import decoder_for
from cdc_replicator.cql.types import CqlType, parse_type
from cdc_replicator.cql.values import CqlMap, UdtValue

__all__ = ["CqlMap", "CqlType", "UdtValue", "decoder_for", "parse_type"]
