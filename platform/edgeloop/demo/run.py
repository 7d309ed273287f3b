"""The closed loop on one machine, in compressed time (what ``make demo`` runs).

1. Simulate 3 sites; train v1 on the history with the real pipeline (kfp.local,
   embedded MLflow), promote it.
2. Start the intake, mosquitto (when installed) and 6 real agents (2 per site),
   each behind its site's link; roll v1 out wave by wave, canary site first.
3. Stream the live days to the agents (MQTT for the canary site when a broker
   runs, HTTP otherwise), day by day, each reading with its timestamp. At one
   site the ambient temperature shifts; at another a pump's sensors fault.
4. The intake judges every window against its node's own baseline; the trigger
   policy fires for the shifted site and raises data-quality alerts for the
   faulty one (not drift).
5. Retrain on what the fleet sent (collected Parquet partitions, labelled with
   the work orders ingested so far) plus recent history; the gates compare v2
   with v1; a promoted v2 is rolled out while one site is offline; that site
   keeps scoring on v1, buffers its reports, and catches up when it returns.
6. Check that nothing was lost or duplicated, run Evidently on the samples,
   and summarise with the lineage of v2 back to the drift reports.
"""

from __future__ import annotations

import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pandas as pd
from rich.console import Console

from edgeloop.core.settings import BaselinePolicy, PlatformSettings
from edgeloop.demo import feed, fleet_ops
from edgeloop.demo.first_model import first_model_summary
from edgeloop.demo.link import SiteLink, free_port, wait_until
from edgeloop.demo.processes import AgentSpec, agent, mosquitto
from edgeloop.demo.scenario import (
    CANARY_SITE,
    DRIFT_DAY,
    DRIFT_SITE,
    FAST,
    FAULT_SITE,
    OFFLINE_SITE,
    READINGS_PER_DAY,
    SITES,
    LoopSize,
    edge_rollout,
    simulation_config,
)
from edgeloop.demo.simulator import generate
from edgeloop.monitor import labels
from edgeloop.monitor.evidently_runs import MonitorWorkspace, monitor_pass
from edgeloop.monitor.intake.app import create_app as create_intake
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop.provenance.audit import AuditLog
from edgeloop.provenance.lineage import chain
from edgeloop.provenance.registry import Registry, parse_ref
from edgeloop.rollout.controller import Reconciler, StatusStore
from edgeloop.rollout.fleet import IntakeFleet
from edgeloop.rollout.registry_view import registry_view
from edgeloop.rollout.sinks import LocalSink
from edgeloop.rollout.spec import EdgeRollout
from edgeloop.train import retraining
from edgeloop.triggers.engine import TriggerEngine
from edgeloop.triggers.policy import TriggerPolicy
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


class _Loop:
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


def run_loop(
    settings: PlatformSettings,
    console: Console,
    size: LoopSize | None = None,
    seed: int = 11,
    stop_after: Literal["train"] | None = None,
) -> LoopResult:
    """Run the closed loop in ``<home>/demo-loop`` (wiped first).

    ``stop_after="train"`` ends after step ① with v1 trained, registered and
    summarised in ``first_model`` (no agents are started).
    """
    loop = _Loop(settings, console, size or LoopSize(), seed)
    size = loop.size
    config = simulation_config(size, seed)
    fleet = generate.simulate(config)
    cut = fleet.readings["timestamp"].min() + pd.Timedelta(days=size.history_days)
    history = fleet.readings[fleet.readings["timestamp"] < cut]
    live = fleet.readings[fleet.readings["timestamp"] >= cut]
    known = fleet.maintenance[pd.to_datetime(fleet.maintenance["failed_at"]) < cut]
    base = loop.home / "data-v1"
    generate.write_fleet(
        generate.FleetData(history.reset_index(drop=True), known, fleet.sites, config),
        base,
    )
    loop.mark(
        f"simulated {len(SITES)} sites x {size.pumps_per_site} pumps: "
        f"{len(history):,} readings of history, {len(live):,} to stream over "
        f"{size.live_days} days"
    )
    v1 = loop.train(base, "initial training")
    if stop_after == "train":
        loop.result.first_model = first_model_summary(loop.settings, loop.registry, v1)
        loop.result.elapsed_s = round(time.perf_counter() - loop.started, 1)
        return loop.result

    pumps = sorted(live["pump_id"].unique())
    node_of = {
        p: f"{p.rsplit('-p', 1)[0]}-gw{1 + i % 2}"
        for i, p in enumerate(sorted(pumps, key=lambda p: (p.rsplit("-p", 1)[0], p)))
    }
    nodes = {
        site: sorted({n for n in node_of.values() if n.startswith(site)})
        for site in SITES
    }
    store = IntakeStore(
        loop.settings.intake_database_url(),
        BaselinePolicy(windows=3, margin=20.0, psi_floor=0.25),
        loop.settings.collect_root(),
    )
    tokens = {n: store.create_token(n) for ns in nodes.values() for n in ns}
    with ExitStack() as stack:
        intake_port = free_port()
        intake = stack.enter_context(
            fleet_ops.serve(create_intake(loop.settings, store), intake_port)
        )
        links = {
            site: stack.enter_context(
                fleet_ops.site_link(site, intake_port, nodes[site], loop.home)
            )
            for site in SITES
        }
        broker = stack.enter_context(mosquitto(loop.home / "mosquitto", loop.home))
        running = stack.enter_context(ExitStack())  # agents stop first, intake last
        agents = {}
        for site, site_nodes in nodes.items():
            for node in site_nodes:
                spec = AgentSpec(
                    node=node,
                    site=site,
                    token=tokens[node],
                    intake_url=f"http://127.0.0.1:{links[site].port}",
                    window_readings=size.pumps_per_node * READINGS_PER_DAY,
                    mqtt_port=broker if site == CANARY_SITE else None,
                )
                agents[node] = running.enter_context(agent(loop.home, spec))
        transport = "MQTT via mosquitto" if broker else "HTTP (mosquitto not installed)"
        loop.mark(
            f"intake and {len(agents)} agents up on 127.0.0.1 ({CANARY_SITE} fed by {transport})"
        )
        publisher = running.enter_context(feed.publisher(broker)) if broker else None
        reconciler = Reconciler(
            registry_view=lambda r: registry_view(loop.registry, r),
            fleet=IntakeFleet(intake),
            sink=LocalSink(loop.home / "published"),
            silent_after_s=3.0,
        )
        statuses = StatusStore(loop.home / "rollouts", loop.audit)
        rollout = fleet_ops.roll_out(
            loop.mark, reconciler, statuses, edge_rollout(nodes), str(v1.version)
        )

        engine = TriggerEngine(
            store,
            loop.home / "triggers.json",
            TriggerPolicy(
                drift_share=0.05,  # one sensor's shift moves 2 of the 32 inputs
                node_fraction=0.5,
                consecutive=2,
                window_s=86400,
                cooldown_s=7 * 86400,
            ),
            loop.audit,
            "pump-failure",
        )
        loop.mark(
            f"streaming day by day: on day 4 {DRIFT_SITE}'s ambient rises 12 degC and "
            f"half its pumps are replaced by a new model; "
            f"{FAULT_SITE} sensors fault from day 3"
        )
        client = stack.enter_context(httpx.Client(timeout=60))
        days = sorted(live["timestamp"].dt.floor("D").unique())
        by_node = live.assign(node=live["pump_id"].map(node_of))
        feeder = feed.Feeder(
            size.pumps_per_node * READINGS_PER_DAY,
            loop.settings.collect_root(),
            client,
            agents,
            publisher,
            store,
            by_node,
        )
        fired = None
        day_index = 0
        for day_index, day in enumerate(days):
            if day_index == DRIFT_DAY:
                loop.stamp("drift_onset")
            feeder.day(day, set(agents))
            now = (day + pd.Timedelta(days=1)).timestamp()
            for decision in engine.evaluate(now=now):
                if decision.fired and fired is None:
                    fired = decision
            if fired is not None:
                loop.stamp("trigger")
                loop.result.timings["days_onset_to_trigger"] = day_index + 1 - DRIFT_DAY
                loop.mark(f"day {day_index + 1}: trigger fired: {fired.reason}")
                break
        alerts = sorted(
            {d.cohort for d in engine.decisions() if d.kind == "data_quality"}
        )
        if alerts:
            loop.mark(f"data-quality alerts, not counted as drift: {', '.join(alerts)}")
        if fired is None:
            loop.mark("no retraining triggered: the fleet stays on v1")
        else:
            _retrain_and_roll_out(
                loop,
                _Running(agents, links, reconciler, statuses, store, client, feeder),
                fleet,
                base,
                fired,
                days,
                day_index,
                rollout,
            )
        loop.result.decisions = [d.model_dump(mode="json") for d in engine.decisions()]
        loop.result.versions = {
            node: fleet_ops.serving(client, url) for node, url in sorted(agents.items())
        }
        running.close()  # SIGTERM: each agent queues its open window and drains
        loop.mark("agents stopped (each queued its open window and delivered it)")
        loop.result.drift = _drift_by_site(store)
        loop.result.integrity = feeder.integrity()
        loop.result.evidently = _evidently(loop, store, float(size.live_days))
    loop.result.gates = _gates(loop.registry, loop.result.models)
    if len(loop.result.models) > 1:
        latest = loop.result.models[-1]
        loop.result.lineage = chain(
            loop.settings,
            loop.registry,
            parse_ref(f"{latest['name']}:{latest['version']}"),
            IntakeStore.existing(loop.settings),
        ).model_dump(mode="json")
    loop.result.elapsed_s = round(time.perf_counter() - loop.started, 1)
    loop.mark("loop finished; every process it started is stopped")
    return loop.result


@dataclass
class _Running:
    """What is up while the live days stream."""

    agents: dict[str, str]
    links: dict[str, SiteLink]
    reconciler: Reconciler
    statuses: StatusStore
    store: IntakeStore
    client: httpx.Client
    feeder: feed.Feeder


def _retrain_and_roll_out(
    loop: _Loop,
    up: _Running,
    fleet: generate.FleetData,
    base: Path,
    fired: Any,
    days: list[pd.Timestamp],
    day_index: int,
    rollout: EdgeRollout,
) -> None:
    """Labels, fresh data, retraining; if promoted: offline site, rollout, catch-up."""
    now = days[day_index] + pd.Timedelta(days=1)
    orders = loop.home / "work-orders.csv"
    log = fleet.maintenance[pd.to_datetime(fleet.maintenance["failed_at"]) < now].copy()
    for column in ("failed_at", "repaired_at"):
        log[column] = pd.to_datetime(log[column]).dt.strftime("%Y-%m-%dT%H:%M:%S")
    log.to_csv(orders, index=False)
    ingested = labels.ingest(orders, loop.settings.collect_root())
    loop.audit.append("labels", str(orders), **ingested)
    loop.result.alarm_quality = [
        q
        for q in labels.alarm_quality(
            loop.settings.collect_root(), "pump-failure", 48.0
        )
        if q["day"] == "all"
    ]
    data = loop.home / "data-v2"
    manifest = retraining.assemble(
        loop.settings, base, data, older_days=loop.size.older_days
    )
    loop.mark(
        f"assembled data-v2: {manifest['rows']['collected']:,} collected readings from "
        f"{len(manifest['partitions'])} partitions + {manifest['rows']['base']:,} older; "
        f"{ingested['new']} work orders ingested"
    )
    v2 = loop.train(
        data,
        fired.reason,
        fired.model_dump(mode="json"),
        # compare v1 and v2 on held-out pumps over the fresh days only
        holdout_from=pd.Timestamp(days[0]).isoformat(),
    )
    if not v2.promoted:
        loop.mark(f"v{v2.version} failed its gates: champion and fleet stay on v1")
        return
    up.links[OFFLINE_SITE].down()
    offline = [n for n in up.agents if n.startswith(OFFLINE_SITE)]
    loop.mark(f"{OFFLINE_SITE} goes offline (link down) before the rollout")
    online = {n for n in up.agents if n not in offline}
    fleet_ops.wait_silent(up.reconciler, offline)
    rollout = fleet_ops.roll_out(
        loop.mark, up.reconciler, up.statuses, rollout, str(v2.version)
    )
    loop.stamp("reachable_on_new")
    for later in days[day_index + 1 :]:
        up.feeder.day(later, online)
    depth = {n: fleet_ops.outbox_depth(up.client, up.agents[n]) for n in offline}
    loop.mark(
        f"streamed the remaining {len(days) - day_index - 1} days; {OFFLINE_SITE} "
        f"kept scoring on v1 offline, {sum(depth.values())} reports buffered"
    )
    up.links[OFFLINE_SITE].up()
    caught_up = wait_until(
        lambda: (
            all(
                fleet_ops.serving(up.client, up.agents[n]) == str(v2.version)
                for n in offline
            )
            and all(
                fleet_ops.outbox_depth(up.client, up.agents[n]) == 0 for n in offline
            )
        ),
        90,
        0.3,
    )
    if caught_up:
        loop.stamp("all_on_new")
    loop.result.offline = {
        "site": OFFLINE_SITE,
        "buffered_reports": depth,
        "caught_up": caught_up,
    }
    loop.mark(
        f"{OFFLINE_SITE} back online: "
        + (
            "switched to v" + str(v2.version) + " and delivered its backlog"
            if caught_up
            else "did NOT catch up in 90 s"
        )
    )
    up.reconciler.reconcile(up.statuses.load(rollout))


def _drift_by_site(store: IntakeStore) -> dict[str, dict[str, Any]]:
    """Per site and version: worst drift vs baseline, vs training reference, inputs that drifted."""
    out: dict[str, dict[str, Any]] = {}
    for row in store.drift_summary():
        site = out.setdefault(row["site"], {})
        site[row["version"]] = row
    return out


def _evidently(loop: _Loop, store: IntakeStore, days: float) -> dict[str, Any]:
    """One Evidently run per version and site over the live period.

    Per day would be 30 runs of ~5 s each (Evidently renders plotly figures for
    every metric; see docs/benchmarks.md), too slow for a 5-minute demo.
    """
    workspace = MonitorWorkspace(loop.home / "evidently")
    records, _ = monitor_pass(
        store,
        loop.registry,
        workspace,
        "pump-failure",
        None,
        bucket_s=int(days * 86400) * 4,
    )
    worst: dict[str, float] = {}
    for r in records:
        if r.drifted_columns is not None:
            worst[r.cohort] = max(worst.get(r.cohort, 0.0), r.drifted_columns)
    loop.mark(f"Evidently: {len(records)} snapshots (per version and site)")
    return {
        "snapshots": len(records),
        "workspace": str(workspace.path),
        "max_drifted_columns": worst,
    }


def _gates(registry: Registry, models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for m in models:
        lineage = registry.lineage(parse_ref(f"{m['name']}:{m['version']}"))
        out.append(
            {
                "model": f"{m['name']}:{m['version']}",
                "promoted": m["promoted"],
                "parent": lineage["parent_champion"],
                "gates": lineage["gates"],
            }
        )
    return out


__all__ = ["FAST", "LoopResult", "LoopSize", "run_loop"]
