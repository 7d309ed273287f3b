"""Step ④: what the fleet reports, and what it means.

Owns the intake (``intake/``: agents' reports, per-node drift baselines,
collected readings as Parquet), Evidently runs over the agents' samples,
delayed labels (work orders) and alarm quality, and the asset register (pump
types per entity). May import ``provenance`` and ``core``; the stages above it
(``train``, ``triggers``) read it, it never reads them.
"""
