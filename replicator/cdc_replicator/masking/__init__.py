"""Masking of PII/PHI in change events, before anything leaves the replicator.

Where to look
-------------
- ``policy``  the ``MaskingPolicy`` spec (pydantic; the CRD's schema via ``crd_schema()``) and
  ``KeySource`` (where a named key or salt lives in Vault).
- ``actions`` the five actions as closures over one value, and the canonical bytes that
  ``hash`` / ``hmac`` digest (documented there, so tokens can be re-derived independently).
- ``rules``   which rules apply to a column and what they make of its type; ``check_policy``
  (the load-time gate).
- ``plans``   ``compile_table``: a ``TablePlan`` per table (masks bound to keys and encoders);
  ``destination_type`` (what sinks must create).
- ``apply``   the per-event hot path: ``mask_event``, and ``range_survives_masking`` (whether a
  range deletion is still exact after masking).
- ``keys``    ``VaultKeyStore``: keys from KV v2 with token or Kubernetes auth, refreshed on a
  timer (or ``keys_from_environment`` when the operator injects them); its docstring holds
  the **re-keying procedure**.
- ``audit``   the Prometheus counters and the per-batch audit log line.
- ``masker``  ``Masker``: the stateful edge the replicator holds (plans cached per table,
  schema generation and key generation; audit per batch).

How the replicator uses it
--------------------------
::

    metrics = MaskingMetrics()
    keys = VaultKeyStore(vault_settings, key_sources, metrics)
    keys.load()                                  # KeyLoadError -> refuse to start
    masker = Masker(merge_policies(specs), keys, metrics)
    masker.check(pipeline_tables)                # PolicyError -> refuse to start (the pipeline's
                                                 # tables only: rules with globs may match others)
    keys.start()                                 # refresh on a timer
    ...
    masked = masker.mask_batch(events, lambda e: registry.find(e.keyspace, e.table))
    plan = masker.plan(table)                    # sinks: destination_type(plan, column)

Semantics in short: nulls stay null; primary-key columns, map keys and set elements accept
only ``hash``/``hmac`` (deterministic and injective, so upserts converge and rows stay
distinct); non-frozen collections and UDTs are masked by path, cell by cell; the first
matching rule wins per column (a whole-column rule beats path rules).
"""
