"""Retraining triggers: the pure policy, and where decisions are kept."""
