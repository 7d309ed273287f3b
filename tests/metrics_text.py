"""Read one value from Prometheus text exposition, as a scraper would."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def metric(text: str, name: str, **labels: str) -> float | None:
    """Sum of the samples called ``name`` whose labels include ``labels`` (None: none)."""
    found = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                found = (found or 0.0) + sample.value
    return found
