"""When to retrain: the pure trigger policy and the engine that keeps its decisions.

The policy (``policy``) judges drift windows, schedules, new data, performance
and manual requests with no I/O; the engine (``engine``) feeds it from the
intake's store and records every decision (and audits fired ones). May import
``monitor``, ``provenance`` and ``core``; never ``train`` or ``rollout``.
"""
