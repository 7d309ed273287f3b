"""The agent's Prometheus metrics: ``prometheus_client`` with one registry per agent.

One registry per :class:`Metrics` (no module-level globals), so two agents in one
process (tests, the demo's fleet) never share a counter. Every metric is
declared in :data:`CATALOG` with its help text and label names; names follow
Prometheus conventions (``_total`` counters, ``_seconds`` histograms). Counters
are exact integers up to 2**53 in the exposition (the hand-written ``%g``
format lost precision after a million requests). Process metrics (CPU, RSS,
open files) come from ``prometheus_client``'s process collector; the outbox's
durable counters are read at scrape time (:class:`OutboxCollector`), so they
survive restarts the way the queue does.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from edgeloop_agent.outbox.store import Outbox

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Kind = Literal["counter", "gauge"]

CATALOG: dict[str, tuple[Kind, str, tuple[str, ...]]] = {
    # scoring
    "edgeloop_requests_total": (
        "counter",
        "Scoring requests answered (/predict, /v2/models/{name}/infer), errors included; code is the HTTP status",
        ("endpoint", "code"),
    ),
    "edgeloop_scored_rows_total": (
        "counter",
        "Rows scored, over HTTP and MQTT",
        ("version",),
    ),
    "edgeloop_alarms_total": (
        "counter",
        "Scored rows at or above the bundle's alarm threshold",
        ("version",),
    ),
    "edgeloop_degraded_readings_total": (
        "counter",
        "Readings scored with at least one sensor missing (null)",
        (),
    ),
    "edgeloop_explained_alarms_total": (
        "counter",
        "Alarms explained by their top sensors",
        (),
    ),
    "edgeloop_scoring_failures_total": (
        "counter",
        "Scoring calls where the model raised or answered NaN (HTTP 500)",
        ("version",),
    ),
    # the model
    "edgeloop_model_info": (
        "gauge",
        "The model this agent serves (value 1; the labels carry its identity)",
        ("model", "version", "digest"),
    ),
    "edgeloop_model_activations_total": (
        "counter",
        "Verified bundles activated",
        ("version",),
    ),
    "edgeloop_model_failures_total": (
        "counter",
        "Bundles that could not be activated (download, verification, smoke test)",
        (),
    ),
    # drift
    "edgeloop_drift_windows_total": (
        "counter",
        "Drift windows closed and queued for the intake",
        ("version",),
    ),
    "edgeloop_drifted_share": (
        "gauge",
        "Share of the model's inputs that drifted in the last closed window (0..1)",
        ("version",),
    ),
    "edgeloop_feature_psi": (
        "gauge",
        "Population stability index of one input in the last closed window",
        ("feature",),
    ),
    # MQTT
    "edgeloop_mqtt_connected": (
        "gauge",
        "1 while connected to the site's MQTT broker",
        (),
    ),
    "edgeloop_mqtt_scored_total": (
        "counter",
        "Readings taken from MQTT and scored (only windowed, for a monitor-only bundle)",
        (),
    ),
    "edgeloop_mqtt_malformed_total": (
        "counter",
        "MQTT messages skipped as malformed",
        (),
    ),
    "edgeloop_mqtt_dropped_total": (
        "counter",
        "MQTT messages dropped because the scoring queue was full",
        (),
    ),
    "edgeloop_mqtt_unscored_total": (
        "counter",
        "MQTT readings not scored because no model was active",
        (),
    ),
}


class Metrics:
    """The agent's metrics: a private registry, counters by name, a latency histogram.

    Also keeps the heartbeat's figures (successful and failed scoring requests,
    p50/p99 over the most recent requests) without reading the registry back.
    """

    def __init__(self, window: int = 2048) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self._metrics: dict[str, Counter | Gauge] = {}
        for name, (kind, doc, labels) in CATALOG.items():
            if kind == "counter":
                self._metrics[name] = Counter(
                    name.removesuffix("_total"), doc, labels, registry=self.registry
                )
            else:
                self._metrics[name] = Gauge(name, doc, labels, registry=self.registry)
        self._latency = Histogram(
            "edgeloop_request_duration_seconds",
            "Time to answer a successful scoring request",
            ("endpoint",),
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self._children: dict[tuple[str, ...], Any] = {}
        self._histograms: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._recent: deque[float] = deque(maxlen=window)
        self.requests_ok = 0
        self.requests_failed = 0

    def inc(self, name: str, by: float = 1.0, **labels: str) -> None:
        """Add to a counter of :data:`CATALOG`.

        Labelled children are kept by (name, labels): prometheus_client's
        ``labels()`` validates and locks on every call, a few µs per scoring
        request that the agent would otherwise pay two or three times.
        """
        key = (name, *labels.values())
        child = self._children.get(key)
        if child is None:
            metric = self._metrics[name]
            child = metric.labels(**labels) if labels else metric
            self._children[key] = child
        child.inc(by)

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a gauge of :data:`CATALOG`."""
        metric = self._metrics[name]
        assert isinstance(metric, Gauge), name
        (metric.labels(**labels) if labels else metric).set(value)

    def serving(self, model: str, version: str, digest: str) -> None:
        """The info metric names only the model now served (the old one is removed)."""
        info = self._metrics["edgeloop_model_info"]
        assert isinstance(info, Gauge)
        info.clear()
        info.labels(model=model, version=version, digest=digest).set(1)

    def request(self, endpoint: str, code: int, seconds: float | None = None) -> None:
        """Count one scoring request; a success also records its latency."""
        self.inc("edgeloop_requests_total", endpoint=endpoint, code=str(code))
        with self._lock:
            if code < 400:
                self.requests_ok += 1
            else:
                self.requests_failed += 1
            if seconds is not None:
                self._recent.append(seconds)
        if seconds is not None:
            histogram = self._histograms.get(endpoint)
            if histogram is None:
                histogram = self._latency.labels(endpoint=endpoint)
                self._histograms[endpoint] = histogram
            histogram.observe(seconds)

    def percentiles(self) -> tuple[float | None, float | None]:
        """p50 and p99 in milliseconds over the most recent requests."""
        with self._lock:
            recent = sorted(self._recent)
        if not recent:
            return None, None

        def pick(q: float) -> float:
            return round(recent[min(len(recent) - 1, int(q * len(recent)))] * 1000, 4)

        return pick(0.5), pick(0.99)

    def value(self, name: str, **labels: str) -> float:
        """One sample's current value as exposed (0 when absent)."""
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found

    def watch_outbox(self, outbox: Outbox) -> None:
        """Expose the outbox's depth, age and durable counters at scrape time."""
        self.registry.register(OutboxCollector(outbox))

    def render(self) -> bytes:
        """The text exposition format (version 0.0.4)."""
        return generate_latest(self.registry)


class OutboxCollector(Collector):
    """Outbox depth, oldest report's age, dead letters and drops, read when scraped."""

    def __init__(
        self, outbox: Outbox, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._outbox = outbox
        self._now = now

    def collect(self) -> Iterator[Metric]:
        """One consistent read of the queue per scrape."""
        depth = GaugeMetricFamily(
            "edgeloop_outbox_depth", "Reports waiting for the intake"
        )
        age = GaugeMetricFamily(
            "edgeloop_outbox_oldest_age_seconds",
            "Age of the oldest report waiting (0 when empty): how long the link has been down, or stuck",
        )
        dead = CounterMetricFamily(
            "edgeloop_outbox_dead_letters",
            "Reports the intake refused for good, kept aside (outbox dead-letters)",
        )
        dropped = CounterMetricFamily(
            "edgeloop_outbox_dropped",
            "Reports the full outbox dropped, by kind (oldest first)",
            labels=("kind",),
        )
        events = CounterMetricFamily(
            "edgeloop_outbox_events",
            "Every durable outbox counter by name (drops, merges, splits, dead letters)",
            labels=("event",),
        )
        try:
            waiting = self._outbox.depth()
            oldest = self._outbox.oldest_created()
            stats = self._outbox.stats()
        except Exception:  # a closed outbox at shutdown: no samples, no failed scrape
            return
        depth.add_metric([], waiting)
        age.add_metric(
            [], max(0.0, (self._now() - oldest).total_seconds()) if oldest else 0.0
        )
        dead.add_metric([], stats.get("dead_lettered", 0))
        for name, value in sorted(stats.items()):
            if name.startswith("dropped_"):
                dropped.add_metric([name.removeprefix("dropped_")], value)
            events.add_metric([name], value)
        yield from (depth, age, dead, dropped, events)
