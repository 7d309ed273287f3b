"""The panels of a model's Evidently project: what its dashboard shows, and why so.

Evidently 0.7's workspace storage matches each point of a panel to the first
series filter of the same metric and keys series by metric and labels, not by
tags: a panel with one line per site (same metric, filters differing only by
tag) shows the first site alone. So each site gets a panel of its own (two
metrics: drifted share and missing share, filtered by the site's tag), and each
model version one. Counters sum or take the last run across all of them.
"""

from __future__ import annotations

from typing import Any

MAX_SITE_PANELS = 24
"""Sites beyond this (sorted by name) get no panel of their own: the dashboard
is for a person; fleets are read through the intake and Prometheus
(docs/observability.md)."""

_SHARE = {"value_type": "share"}
_DRIFT_MEANS = (
    "Drifted share: inputs whose distribution differs from the version's training "
    "data (the whole fleet's). A site unlike the fleet average stays high without "
    "drifting; the drift trigger judges each node against its own baseline instead "
    "('own baseline' in edgeloop's summary)."
)


def tags_shown(board: Any) -> set[str]:
    """Every tag some panel of the dashboard filters on (the sites and versions it knows)."""
    return {
        tag
        for panel in board.model().panels
        for value in panel.values
        for tag in value.tags or []
    }


def fleet_panels(cohorts: set[str], versions: set[str]) -> list[Any]:
    """Counters, then a panel per site, then a panel per model version."""
    from evidently.sdk.panels import PanelMetric, counter_panel, line_plot_panel

    panels = [
        counter_panel(
            "Drifted columns, latest run",
            [
                PanelMetric(
                    metric="DriftedColumnsCount", metric_labels={"value_type": "count"}
                )
            ],
            description="Inputs whose distribution differs from the model's training data (Evidently's drift tests), in the newest snapshot.",
            size="half",
        ),
        counter_panel(
            "Missing cells, all runs",
            [
                PanelMetric(
                    metric="DatasetMissingValueCount",
                    metric_labels={"value_type": "count"},
                )
            ],
            description="Sensor values missing in the sample windows (dropouts), summed over every run: data quality, not drift.",
            size="half",
            aggregation="sum",
        ),
    ]
    for cohort in sorted(cohorts)[:MAX_SITE_PANELS]:
        tag = [f"cohort={cohort}"]
        panels.append(
            line_plot_panel(
                f"{cohort}: drifted and missing share",
                [
                    PanelMetric(
                        legend="drifted share vs training data",
                        metric="DriftedColumnsCount",
                        metric_labels=_SHARE,
                        tags=tag,
                    ),
                    PanelMetric(
                        legend="missing share",
                        metric="DatasetMissingValueCount",
                        metric_labels=_SHARE,
                        tags=tag,
                    ),
                ],
                description=f"{_DRIFT_MEANS} Missing share: cells missing in the window (a data-quality problem). By the time of the data.",
                size="half",
            )
        )
    for version in sorted(versions, key=lambda v: (len(v), v)):
        panels.append(
            line_plot_panel(
                f"Model v{version}: drifted share vs its training data",
                [
                    PanelMetric(
                        legend=f"v{version}, one point per site and window",
                        metric="DriftedColumnsCount",
                        metric_labels=_SHARE,
                        tags=[f"version={version}"],
                    )
                ],
                description=f"{_DRIFT_MEANS} A retrained version learns a site's new normal; it does not make the site like the fleet, so this share need not fall.",
                size="half",
            )
        )
    return panels
