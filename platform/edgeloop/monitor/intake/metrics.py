"""The intake's Prometheus metrics: the fleet as gauges, ingest as counters.

Two kinds, one registry per app (no module-level globals):

* **Fleet gauges**, read from the ``nodes`` table when scraped
  (:class:`FleetCollector`): nodes per site and model version, nodes silent for
  longer than ``intake.silent_after_s``, unhealthy and drifting nodes, the
  worst drifted share per site and version of each node's latest window, dead
  letters and outbox drops from the latest heartbeats. One query of a few
  columns, the same cost as ``/v1/cohorts``' node part, never history.
* **Ingest** counted as reports arrive (:class:`IngestMetrics`): POSTs by
  status code (the ingest-error alert), reports by kind and outcome, report
  lag (received − created: how stale the fleet view is) and reports per POST
  (what a node had buffered while its link was down).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from edgeloop.monitor.intake.tables import nodes
from edgeloop_agent.contracts import DriftWindow

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from edgeloop_agent.contracts import Report

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LAG_BUCKETS_S = (1, 10, 60, 300, 900, 3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)


class IngestMetrics:
    """Counters and histograms of ``POST /v1/reports``, in the app's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.posts = Counter(
            "edgeloop_intake_posts",
            "POST /v1/reports answered, by HTTP status (4xx: refused, 503: store unavailable)",
            ("code",),
            registry=registry,
        )
        self.reports = Counter(
            "edgeloop_intake_reports",
            "Reports by kind and outcome: accepted (new), duplicate (seen before), rejected (the store could not take it)",
            ("kind", "outcome"),
            registry=registry,
        )
        self.lag = Histogram(
            "edgeloop_intake_report_lag_seconds",
            "Received minus created, per new report: how far behind the fleet view is",
            ("kind",),
            buckets=LAG_BUCKETS_S,
            registry=registry,
        )
        self.batch = Histogram(
            "edgeloop_intake_batch_reports",
            "Reports per POST: a node catching up after its link was down sends large batches",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )

        self.alarms = Counter(
            "edgeloop_intake_alarms",
            "Alarms the nodes raised, from their drift windows, by site and model version",
            ("site", "version"),
            registry=registry,
        )
        self.version_changes = Counter(
            "edgeloop_intake_version_changes",
            "Nodes whose heartbeat names another model version than before; "
            "direction=down: an older registry version (a rollback), up: newer, other: not comparable",
            ("site", "direction"),
            registry=registry,
        )

        # series exist at 0 before their first event, so increase() and rate()
        # see the first one (a counter that appears at 1 shows no increase)
        for code in ("200", "401", "403", "413", "422", "429", "503"):
            self.posts.labels(code=code)

    def version_changed(self, site: str, old: str, new: str) -> None:
        """One node moved from ``old`` to ``new`` (registry versions compare as integers)."""
        if old.isdigit() and new.isdigit():
            direction = "down" if int(new) < int(old) else "up"
        else:
            direction = "other"
        self.version_changes.labels(site=site or "(none)", direction=direction).inc()

    def answered(self, code: int) -> None:
        """One POST answered with ``code``."""
        self.posts.labels(code=str(code)).inc()

    def stored(self, fresh: list[Report], received: datetime) -> None:
        """Reports the store added (after commit): per kind, their lag, their alarms."""
        for report in fresh:
            kind = report.body.kind
            self.reports.labels(kind=kind, outcome="accepted").inc()
            created = report.created_at
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            self.lag.labels(kind=kind).observe(
                max(0.0, (received - created).total_seconds())
            )
            site = report.body.site or "(none)"
            if isinstance(report.body, DriftWindow):  # the series at 0 first
                self.alarms.labels(site=site, version=report.body.model_version).inc(
                    report.body.alarms
                )
            elif kind == "heartbeat":
                self.version_changes.labels(site=site, direction="down")

    def answered_batch(
        self, batch: list[Report], duplicates: int, rejected: int
    ) -> None:
        """A batch the store took: its size, and what it did not add.

        The store answers how many were duplicates or rejected, not which, so
        they are counted under the batch's kind when it has one (nodes send one
        kind per batch most of the time) and ``mixed`` otherwise.
        """
        self.batch.observe(len(batch))
        kinds = {r.body.kind for r in batch}
        kind = kinds.pop() if len(kinds) == 1 else "mixed"
        for outcome, count in (("duplicate", duplicates), ("rejected", rejected)):
            if count:
                self.reports.labels(kind=kind, outcome=outcome).inc(count)


class FleetCollector(Collector):
    """Fleet gauges from the ``nodes`` table, read at scrape time."""

    def __init__(
        self,
        engine: sa.Engine,
        silent_after_s: float,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._silent_after_s = silent_after_s
        self._now = now

    def collect(self) -> Iterator[Metric]:
        """One query; a database that does not answer yields no fleet samples."""
        query = sa.select(
            nodes.c.site,
            nodes.c.active_version,
            nodes.c.last_seen,
            nodes.c.healthy,
            nodes.c.drifted_share,
            nodes.c.baseline_share,
            nodes.c.drifted_inputs,
            nodes.c.dead_letters,
            nodes.c.outbox_dropped,
        )
        try:
            with self._engine.connect() as conn:
                rows = [tuple(row) for row in conn.execute(query)]
        except sa.exc.SQLAlchemyError:
            return
        yield from _fleet_families(rows, self._now(), self._silent_after_s)


def _fleet_families(
    rows: list[tuple[Any, ...]], now: datetime, silent_after_s: float
) -> Iterator[Metric]:
    per_version: dict[tuple[str, str], int] = {}
    silent: dict[str, int] = {}
    unhealthy: dict[str, int] = {}
    drifting: dict[str, int] = {}
    dead: dict[str, int] = {}
    dropped: dict[str, int] = {}
    worst: dict[tuple[str, str, str], float] = {}
    per_input: dict[tuple[str, str], int] = {}
    sites: set[str] = set()
    for site_name, active, seen, healthy, share, baseline, inputs, dl, drops in rows:
        site = str(site_name or "(none)")
        version = str(active or "-")
        sites.add(site)
        per_version[site, version] = per_version.get((site, version), 0) + 1
        if not _seen_within(seen, now, silent_after_s):
            silent[site] = silent.get(site, 0) + 1
        if not healthy:
            unhealthy[site] = unhealthy.get(site, 0) + 1
        names = json.loads(str(inputs)) if inputs else []
        if names:
            drifting[site] = drifting.get(site, 0) + 1
        for name in names:
            per_input[site, str(name)] = per_input.get((site, str(name)), 0) + 1
        dead[site] = dead.get(site, 0) + int(dl or 0)
        dropped[site] = dropped.get(site, 0) + int(drops or 0)
        for against, value in (("reference", share), ("baseline", baseline)):
            if value is not None:
                key = (site, version, against)
                worst[key] = max(worst.get(key, 0.0), float(value))

    family = GaugeMetricFamily(
        "edgeloop_fleet_nodes",
        "Nodes known to the intake, by site and the model version they serve ('-': none yet)",
        labels=("site", "version"),
    )
    for (site, version), count in sorted(per_version.items()):
        family.add_metric([site, version], count)
    yield family
    for name, doc, values in (
        (
            "edgeloop_fleet_silent_nodes",
            f"Nodes whose newest heartbeat is older than {silent_after_s:g} s (intake.silent_after_s)",
            silent,
        ),
        (
            "edgeloop_fleet_unhealthy_nodes",
            "Nodes whose latest heartbeat says unhealthy",
            unhealthy,
        ),
        (
            "edgeloop_fleet_drifting_nodes",
            "Nodes whose latest window found drifted inputs",
            drifting,
        ),
        (
            "edgeloop_fleet_dead_letters",
            "Reports the site's nodes set aside for good (sum of their latest heartbeats)",
            dead,
        ),
        (
            "edgeloop_fleet_outbox_dropped",
            "Reports the site's full outboxes dropped (sum of their latest heartbeats)",
            dropped,
        ),
    ):
        family = GaugeMetricFamily(name, doc, labels=("site",))
        for site in sorted(sites):
            family.add_metric([site], values.get(site, 0))
        yield family
    family = GaugeMetricFamily(
        "edgeloop_site_drifted_share",
        "Worst drifted share of the latest window over a site's nodes, by version; "
        "against=reference: the model's training data, against=baseline: the node's own first days",
        labels=("site", "version", "against"),
    )
    for (site, version, against), value in sorted(worst.items()):
        family.add_metric([site, version, against], value)
    yield family
    family = GaugeMetricFamily(
        "edgeloop_site_drifted_inputs",
        "Nodes of a site whose latest window found this input drifted against their baseline (the drift heatmap)",
        labels=("site", "input"),
    )
    for (site, name), count in sorted(per_input.items()):
        family.add_metric([site, name], count)
    yield family


def _seen_within(seen: object, now: datetime, seconds: float) -> bool:
    if not isinstance(seen, datetime):
        return False
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=UTC)
    return (now - seen).total_seconds() <= seconds


def registry_for(engine: sa.Engine, silent_after_s: float) -> CollectorRegistry:
    """A fresh registry with process, platform and fleet collectors."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(FleetCollector(engine, silent_after_s))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """Text exposition 0.0.4."""
    return generate_latest(registry)
