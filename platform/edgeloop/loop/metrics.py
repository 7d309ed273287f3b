"""The loop service's Prometheus metrics, served beside ``/healthz``.

Trigger decisions (fired or suppressed, by kind), retraining runs by how they
ended, ticks, tick errors and whether this replica leads: what the
"drift trigger fired" and "retraining keeps failing" alerts read. One registry
per service (no module-level globals).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, get_args

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from edgeloop.triggers.policy import Kind

if TYPE_CHECKING:
    from edgeloop.loop.service import Tick
    from edgeloop.triggers.policy import Decision


class LoopMetrics:
    """Counters of the loop's ticks, decisions and runs."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.decisions = Counter(
            "edgeloop_trigger_decisions",
            "Trigger decisions by kind (drift, schedule, new_data, performance, manual, code_change): "
            "fired=true once per decision, when the loop takes it up; fired=false per evaluation that held back",
            ("kind", "fired"),
            registry=self.registry,
        )
        self.runs = Counter(
            "edgeloop_retraining_runs",
            "Retraining runs started, and how the finished ones ended (succeeded, failed, abandoned)",
            ("state",),
            registry=self.registry,
        )
        self.ticks = Counter(
            "edgeloop_loop_ticks",
            "Loop service ticks, by whether this replica held the lease",
            ("leader",),
            registry=self.registry,
        )
        self.errors = Counter(
            "edgeloop_loop_tick_errors",
            "Problems a tick reported and carried on from (backend down, no data, lease)",
            registry=self.registry,
        )
        self.leading = Gauge(
            "edgeloop_loop_leader",
            "1 while this replica holds the lease",
            registry=self.registry,
        )
        # every series exists from the start at 0: increase() over a counter
        # that first appears at 1 is 0, and the alert on it would never fire
        for kind in get_args(Kind):
            for fired in ("true", "false"):
                self.decisions.labels(kind=kind, fired=fired)
        for state in ("started", "succeeded", "failed", "abandoned"):
            self.runs.labels(state=state)
        self.last_tick = Gauge(
            "edgeloop_loop_last_tick_timestamp_seconds",
            "When the last tick ended (Unix time): a stalled service stops moving it",
            registry=self.registry,
        )

    def record(self, tick: Tick, decisions: list[Decision]) -> None:
        """Count one finished tick."""
        self.ticks.labels(leader=str(tick.leader).lower()).inc()
        self.leading.set(int(tick.leader))
        if tick.errors:
            self.errors.inc(len(tick.errors))
        for decision in decisions:
            self.decisions.labels(
                kind=decision.kind, fired=str(decision.fired).lower()
            ).inc()
        if tick.started:
            self.runs.labels(state="started").inc()
        for state in tick.finished.values():
            self.runs.labels(state=state).inc()
        self.last_tick.set(time.time())

    def render(self) -> bytes:
        """Text exposition 0.0.4."""
        return generate_latest(self.registry)
