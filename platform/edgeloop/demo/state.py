"""What one run of the demo loop shares between its stages.

:class:`LoopResult` is what the summary prints and the tests assert;
:class:`Loop` holds the run's settings, registry, audit log and clock;
:class:`Running` is what is up while the live days stream.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from edgeloop.core.settings import PlatformSettings
from edgeloop.demo import feed
from edgeloop.demo.link import SiteLink
from edgeloop.demo.scenario import LoopSize
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop.provenance.audit import AuditLog
from edgeloop.provenance.registry import Registry
from edgeloop.rollout.controller import Reconciler, StatusStore
from edgeloop.train import retraining
from edgeloop_agent.contracts import RegisteredModel


@dataclass
class LoopResult:
    """What the summary reports (and the tests assert)."""

    home: str = ""
    timeline: list[tuple[float, str]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    drift: dict[str, dict[str, Any]] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    alarm_quality: list[dict[str, Any]] = field(default_factory=list)
    integrity: dict[str, Any] = field(default_factory=dict)
    evidently: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    offline: dict[str, Any] = field(default_factory=dict)
    first_model: dict[str, Any] = field(default_factory=dict)
    """What step ① trained (metrics, gates, latency, lineage): the train-only stop."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds since start: drift_onset (streaming of the shifted day began),
    trigger, reachable_on_new (rollout done, offline site excluded), all_on_new."""
    elapsed_s: float = 0.0


class Loop:
    """State shared by the steps of one run."""

    def __init__(
        self, settings: PlatformSettings, console: Console, size: LoopSize, seed: int
    ) -> None:
        self.size = size
        self.seed = seed
        self.console = console
        self.home = (settings.home / "demo-loop").resolve()
        if self.home.exists():
            shutil.rmtree(self.home)
        self.home.mkdir(parents=True)
        self.settings = settings.model_copy(update={"home": self.home})
        self.result = LoopResult(home=str(self.home))
        self.started = time.perf_counter()
        self.registry = Registry(self.settings.tracking_uri())
        self.audit = AuditLog(self.settings.audit_path())
        self.sent: dict[str, int] = {}

    def stamp(self, name: str) -> None:
        """Remember when a milestone happened (for the benchmark)."""
        self.result.timings[name] = round(time.perf_counter() - self.started, 2)

    def mark(self, text: str) -> None:
        """Print a timeline line and keep it for the summary."""
        elapsed = time.perf_counter() - self.started
        self.result.timeline.append((round(elapsed, 1), text))
        self.console.print(f"[{elapsed:6.1f}s] {text}")

    def train(
        self,
        data: Path,
        reason: str,
        trigger: dict[str, Any] | None = None,
        **params: Any,
    ) -> RegisteredModel:
        """Run the real pipeline (kfp.local) on ``data``; the gates decide promotion."""

        def progress(task: str, state: str) -> None:
            if state == "started":
                self.console.print(f"          · {task}", style="dim")

        registered = retraining.retrain(
            self.settings,
            data,
            reason,
            progress,
            trigger=trigger,
            n_estimators=self.size.n_estimators,
            seed=self.seed,
            **params,
        )
        self.result.models.append(registered.model_dump())
        self.mark(
            f"pipeline registered {registered.ref}"
            + (
                " and promoted it to champion"
                if registered.promoted
                else " (gates failed: not promoted)"
            )
        )
        return registered


@dataclass
class Running:
    """What is up while the live days stream."""

    agents: dict[str, str]
    links: dict[str, SiteLink]
    reconciler: Reconciler
    statuses: StatusStore
    store: IntakeStore
    client: httpx.Client
    feeder: feed.Feeder
