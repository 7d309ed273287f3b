"""Drift and data-quality bookkeeping over windows of scored readings."""
