"""The contract between the operator and the replicator, and nothing else.

- ``config``: the replicator's configuration file (the operator renders it per node);
- ``policy``: the ``MaskingPolicy`` spec (the CRD is generated from it);
- ``keycodec``: how a masking key's stored text becomes key bytes;
- ``checkpoint``: the progress file a replicator writes and the operator folds into status;
- ``base``: the one base model they all share.

It imports nothing else of the replicator, so the operator depends on this package alone.
"""
