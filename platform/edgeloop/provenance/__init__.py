"""Where every model came from: the MLflow registry view, the audit log, lineage.

Owns model references, registry reads and promotion, the hash-chained audit log,
and the lineage chain that joins them with the fleet's view (passed in through
:class:`edgeloop.provenance.lineage.FleetSource`). May import only ``core``.
"""
