"""Rollout controller: EdgeRollout spec, planning, rendering, validation, sinks."""
