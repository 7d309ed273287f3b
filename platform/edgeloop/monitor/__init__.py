"""Monitoring with Evidently: reports from agents' samples against the bundle's reference."""
