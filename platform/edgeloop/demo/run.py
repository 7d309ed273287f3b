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

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Literal

import httpx
import pandas as pd
import yaml
from rich.console import Console

from edgeloop.core.settings import BaselinePolicy, PlatformSettings
from edgeloop.demo import feed, fleet_ops, report
from edgeloop.demo.first_model import first_model_summary
from edgeloop.demo.link import SiteLink, free_port
from edgeloop.demo.processes import AgentSpec, agent, mosquitto
from edgeloop.demo.retrain_stage import retrain_and_roll_out
from edgeloop.demo.scenario import (
    CANARY_SITE,
    DRIFT_DAY,
    DRIFT_SITE,
    FAST,
    FAULT_SITE,
    READINGS_PER_DAY,
    SITES,
    LoopSize,
    edge_rollout,
    simulation_config,
)
from edgeloop.demo.simulator import generate
from edgeloop.demo.state import Loop, LoopResult, Running
from edgeloop.monitor.intake.app import create_app as create_intake
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop.provenance.lineage import chain
from edgeloop.provenance.registry import parse_ref
from edgeloop.rollout.controller import Reconciler, StatusStore
from edgeloop.rollout.fleet import IntakeFleet
from edgeloop.rollout.registry_view import registry_view
from edgeloop.rollout.sinks import LocalSink
from edgeloop.rollout.spec import EdgeRollout
from edgeloop.triggers.engine import TriggerEngine
from edgeloop.triggers.policy import Decision, TriggerPolicy


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
    loop = Loop(settings, console, size or LoopSize(), seed)
    fleet, base, live = _simulate(loop)
    v1 = loop.train(base, "initial training")
    if stop_after == "train":
        loop.result.first_model = first_model_summary(loop.settings, loop.registry, v1)
        loop.result.elapsed_s = round(time.perf_counter() - loop.started, 1)
        return loop.result
    node_of = _gateways(live)
    nodes = {
        site: sorted({n for n in node_of.values() if n.startswith(site)})
        for site in SITES
    }
    store = IntakeStore(
        loop.settings.intake_database_url(),
        BaselinePolicy(windows=3, margin=20.0, psi_floor=0.25),
        loop.settings.collect_root(),
    )
    with ExitStack() as stack:
        agents_stack = ExitStack()
        up = _start(loop, stack, agents_stack, nodes, store, live, node_of)
        spec = edge_rollout(nodes)
        _keep_rollout_file(loop.home, spec)
        rollout = fleet_ops.roll_out(
            loop.mark, up.reconciler, up.statuses, spec, str(v1.version)
        )
        engine = _trigger_engine(loop, store)
        days = sorted(live["timestamp"].dt.floor("D").unique())
        fired, day_index = _stream_until_trigger(loop, up, engine, days)
        if fired is None:
            loop.mark("no retraining triggered: the fleet stays on v1")
        else:
            retrain_and_roll_out(loop, up, fleet, base, fired, days, day_index, rollout)
        loop.result.decisions = [d.model_dump(mode="json") for d in engine.decisions()]
        loop.result.versions = {
            node: fleet_ops.serving(up.client, url)
            for node, url in sorted(up.agents.items())
        }
        agents_stack.close()  # SIGTERM: each agent queues its open window and drains
        loop.mark("agents stopped (each queued its open window and delivered it)")
        loop.result.drift = report.drift_by_site(store)
        loop.result.integrity = up.feeder.integrity()
        loop.result.evidently = report.evidently(
            loop, store, float(loop.size.live_days)
        )
        loop.result.drift = report.with_evidently(
            loop.result.drift, loop.result.evidently["drifted_share"]
        )
    _conclude(loop)
    return loop.result


def _simulate(loop: Loop) -> tuple[generate.FleetData, Path, pd.DataFrame]:
    """The fleet's history (written as v1's dataset) and the live days to stream."""
    size = loop.size
    config = simulation_config(size, loop.seed)
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
    return fleet, base, live


def _gateways(live: pd.DataFrame) -> dict[str, str]:
    """Pump -> gateway node: two gateways per site, pumps dealt alternately."""
    pumps = sorted(live["pump_id"].unique())
    return {
        p: f"{p.rsplit('-p', 1)[0]}-gw{1 + i % 2}"
        for i, p in enumerate(sorted(pumps, key=lambda p: (p.rsplit("-p", 1)[0], p)))
    }


def _start(
    loop: Loop,
    stack: ExitStack,
    agents_stack: ExitStack,
    nodes: dict[str, list[str]],
    store: IntakeStore,
    live: pd.DataFrame,
    node_of: dict[str, str],
) -> Running:
    """Intake, site links, broker, agents, controller and feeder, all up.

    Everything enters ``stack``; the agents enter ``agents_stack`` (itself in
    ``stack``) so they stop first and the intake last.

    Long: the services start in dependency order (intake, links, broker, agents, controller) and that order is the point.
    """
    tokens = {n: store.create_token(n) for ns in nodes.values() for n in ns}
    intake_port = free_port()
    intake = stack.enter_context(
        fleet_ops.serve(create_intake(loop.settings, store), intake_port)
    )
    links: dict[str, SiteLink] = {
        site: stack.enter_context(
            fleet_ops.site_link(site, intake_port, nodes[site], loop.home)
        )
        for site in SITES
    }
    broker = stack.enter_context(mosquitto(loop.home / "mosquitto", loop.home))
    stack.enter_context(agents_stack)
    window = loop.size.pumps_per_node * READINGS_PER_DAY
    agents = {
        node: agents_stack.enter_context(
            agent(
                loop.home,
                AgentSpec(
                    node=node,
                    site=site,
                    token=tokens[node],
                    intake_url=f"http://127.0.0.1:{links[site].port}",
                    window_readings=window,
                    mqtt_port=broker if site == CANARY_SITE else None,
                ),
            )
        )
        for site, site_nodes in nodes.items()
        for node in site_nodes
    }
    transport = "MQTT via mosquitto" if broker else "HTTP (mosquitto not installed)"
    loop.mark(
        f"intake and {len(agents)} agents up on 127.0.0.1 ({CANARY_SITE} fed by {transport})"
    )
    publisher = agents_stack.enter_context(feed.publisher(broker)) if broker else None
    reconciler = Reconciler(
        registry_view=lambda r: registry_view(loop.registry, r),
        fleet=IntakeFleet(
            intake, token=store.create_token("controller", role="reader")
        ),
        sink=LocalSink(loop.home / "published"),
        silent_after_s=3.0,
    )
    client = stack.enter_context(httpx.Client(timeout=60))
    by_node = live.assign(node=live["pump_id"].map(node_of))
    feeder = feed.Feeder(
        window, loop.settings.collect_root(), client, agents, publisher, store, by_node
    )
    statuses = StatusStore(loop.home / "rollouts", loop.audit)
    return Running(agents, links, reconciler, statuses, store, client, feeder)


def rollout_file(home: Path, name: str = "pumps") -> Path:
    """Where the demo leaves its EdgeRollout (``edgeloop rollout status -f`` reads it)."""
    return Path(home) / "edgerollouts" / f"{name}.yaml"


def _keep_rollout_file(home: Path, rollout: EdgeRollout) -> None:
    path = rollout_file(home, rollout.metadata.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = rollout.model_dump(mode="json", exclude={"status"}, exclude_none=True)
    path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")


def _trigger_engine(loop: Loop, store: IntakeStore) -> TriggerEngine:
    return TriggerEngine(
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


def _stream_until_trigger(
    loop: Loop, up: Running, engine: TriggerEngine, days: list[pd.Timestamp]
) -> tuple[Decision | None, int]:
    """Stream day by day, evaluating the trigger policy after each; stop when it fires."""
    loop.mark(
        f"streaming day by day: on day 4 {DRIFT_SITE}'s ambient rises 12 degC and "
        f"half its pumps are replaced by a new model; "
        f"{FAULT_SITE} sensors fault from day 3"
    )
    fired = None
    day_index = 0
    for day_index, day in enumerate(days):
        if day_index == DRIFT_DAY:
            loop.stamp("drift_onset")
        up.feeder.day(day, set(up.agents))
        now = (day + pd.Timedelta(days=1)).timestamp()
        fired = next((d for d in engine.evaluate(now=now) if d.fired), None)
        if fired is not None:
            loop.stamp("trigger")
            loop.result.timings["days_onset_to_trigger"] = day_index + 1 - DRIFT_DAY
            loop.mark(f"day {day_index + 1}: trigger fired: {fired.reason}")
            break
    alerts = sorted({d.cohort for d in engine.decisions() if d.kind == "data_quality"})
    if alerts:
        loop.mark(f"data-quality alerts, not counted as drift: {', '.join(alerts)}")
    return fired, day_index


def _conclude(loop: Loop) -> None:
    """Gates per version, and the lineage of the newest one back to its trigger."""
    loop.result.gates = report.gates(loop.registry, loop.result.models)
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


__all__ = ["FAST", "LoopResult", "LoopSize", "run_loop"]
