"""``edgeloop demo --loop`` (EXPERIMENTAL): the closed loop on one machine, in compressed time.

Known problem, why this is not ``make demo`` yet: each agent's drift window
(two pumps, a few hours) is compared with the bundle's *fleet-wide* reference
bins, so PSI saturates on every node (drifted share ~1.0 everywhere) and the
trigger cannot tell the shifted site from the others. The fix is a per-node
baseline (e.g. the node's first day on a model, over the same bins) and
day-length windows; see docs/status.md.

1. simulate 70 days of a 3-site fleet; train v1 on the first 60 days, promote it;
2. start the intake and 6 real agents (2 per site) on 127.0.0.1, and roll v1
   out wave by wave (canary site first) through the local sink;
3. stream the last 10 days to the agents; halfway, one site's ambient shifts
   (drift) and another site's sensors fault (stuck values, spikes, NaN bursts);
4. the trigger policy, fed by the intake, fires for the drifted site and only
   raises data-quality alerts for the faulty one;
5. retrain on the collected window plus recent history, gate v2 against v1,
   promote it, and roll it out wave by wave; summarise.

Every part is the production code path; only time is compressed (windows of
readings, not minutes) and everything runs in one process.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import uvicorn
from rich.console import Console

from edgeloop import pipeline_runs
from edgeloop.intake.app import create_app as create_intake
from edgeloop.intake.store import IntakeStore
from edgeloop.registry import Registry, parse_ref
from edgeloop.rollout.controller import Reconciler
from edgeloop.rollout.fleet import IntakeFleet
from edgeloop.rollout.registry_view import registry_view
from edgeloop.rollout.sinks import LocalSink
from edgeloop.rollout.spec import EdgeRollout
from edgeloop.settings import PlatformSettings
from edgeloop.simulator import config as cfg
from edgeloop.simulator import generate
from edgeloop.triggers.engine import TriggerEngine
from edgeloop.triggers.policy import TriggerPolicy

SITES = ("offshore-01", "desert-02", "arctic-03")
DRIFT_SITE, FAULT_SITE = "desert-02", "arctic-03"


@dataclass
class LoopSize:
    """How big the compressed loop is."""

    pumps_per_site: int = 4
    history_days: float = 60
    live_days: float = 10
    n_estimators: int = 200


@dataclass
class LoopResult:
    """What the summary reports."""

    timeline: list[tuple[float, str]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    drift: dict[str, float] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _serve(app: Any) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="error", lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("server failed to start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _rollout() -> EdgeRollout:
    groups = [
        {
            "name": site.split("-")[0],
            "nodes": [f"{site}-gw{i}" for i in (1, 2)],
            "site": site,
        }
        for site in SITES
    ]
    gates = {"soakSeconds": 1, "maxSilentFraction": 0.5, "minHealthyFraction": 0.5}
    return EdgeRollout.model_validate(
        {
            "metadata": {"name": "pumps"},
            "spec": {
                "model": {"name": "pump-failure", "alias": "champion"},
                "runtime": {"image": "ghcr.io/edgeloop/edgeloop-agent:0.1.0"},
                "groups": groups,
                "waves": [
                    {"name": "canary", "groups": ["offshore"], "gates": gates},
                    {"name": "rest", "groups": ["desert", "arctic"], "gates": gates},
                ],
            },
        }
    )


def run_loop(
    settings: PlatformSettings,
    console: Console,
    size: LoopSize | None = None,
    seed: int = 11,
) -> LoopResult:
    """Run the compressed closed loop in ``<home>/loop`` (wiped first)."""
    size = size or LoopSize()
    home = (settings.home / "loop").resolve()
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    s = settings.model_copy(update={"home": home})
    result = LoopResult()
    start = time.perf_counter()

    def mark(text: str) -> None:
        result.timeline.append((time.perf_counter() - start, text))
        console.print(f"[{time.perf_counter() - start:6.1f}s] {text}")

    total = size.history_days + size.live_days
    live_from = size.history_days / total
    config = cfg.SimulationConfig(
        sites=len(SITES),
        pumps_per_site=size.pumps_per_site,
        days=total,
        seed=seed,
        perturbations=(
            cfg.Perturbation(
                kind="ambient_shift",
                sites=(DRIFT_SITE,),
                start_fraction=live_from + 0.3 * (1 - live_from),
                magnitude=1.5,
            ),
            cfg.Perturbation(
                kind="sensor_faults",
                sites=(FAULT_SITE,),
                start_fraction=live_from + 0.2 * (1 - live_from),
                magnitude=3.0,
            ),
        ),
    )
    fleet = generate.simulate(config)
    cut = fleet.readings["timestamp"].min() + pd.Timedelta(days=size.history_days)
    history, live = (
        fleet.readings[fleet.readings["timestamp"] < cut],
        fleet.readings[fleet.readings["timestamp"] >= cut],
    )
    _write_dataset(fleet, history, home / "data-v1", config)
    mark(
        f"simulated {len(fleet.readings):,} readings; training v1 on the first {size.history_days:.0f} days"
    )
    v1 = _train(s, home / "data-v1", size, seed, mark)
    result.models.append(v1)

    registry = Registry(s.tracking_uri())
    store = IntakeStore(s.intake_database_url())
    tokens = {
        f"{site}-gw{i}": store.create_token(f"{site}-gw{i}")
        for site in SITES
        for i in (1, 2)
    }
    with ExitStack() as stack:
        intake = stack.enter_context(_serve(create_intake(s, store)))
        agents = {
            node: stack.enter_context(_agent_process(home, node, intake, token))
            for node, token in tokens.items()
        }
        mark(f"intake and {len(agents)} agents running on 127.0.0.1")
        reconciler = Reconciler(
            registry_view=lambda r: registry_view(registry, r),
            fleet=IntakeFleet(intake),
            sink=LocalSink(home / "nodes"),
            silent_after_s=5.0,
        )
        rollout = _roll_out(reconciler, _rollout(), "1", mark)

        engine = TriggerEngine(
            store,
            home / "triggers.json",
            TriggerPolicy(
                drift_share=0.1,
                node_fraction=0.5,
                consecutive=3,
                window_s=1.0,
                cooldown_s=3600,
            ),
        )
        mark(
            f"streaming {size.live_days:.0f} days to the fleet; {DRIFT_SITE} drifts, {FAULT_SITE} sensors fault"
        )
        fired = _stream(live, agents, engine, mark)
        result.decisions = [d.model_dump(mode="json") for d in engine.decisions()]
        result.drift = _drift_by_site(store)
        if fired is None:
            mark("no retraining triggered")
        else:
            mark(f"trigger fired: {fired}")
            recent = history[history["timestamp"] >= cut - pd.Timedelta(days=30)]
            _write_dataset(fleet, pd.concat([recent, live]), home / "data-v2", config)
            v2 = _train(
                s, home / "data-v2", size, seed, mark, extra={"max_regression": 0.1}
            )
            result.models.append(v2)
            if v2["promoted"]:
                rollout = _roll_out(reconciler, rollout, str(v2["version"]), mark)
            else:
                mark(f"v{v2['version']} failed its gates: the fleet stays on v1")
        result.versions = {node: _version(url) for node, url in agents.items()}
    result.gates = _gates(registry, result.models)
    mark("loop finished")
    return result


@contextmanager
def _agent_process(home: Path, node: str, intake: str, token: str) -> Iterator[str]:
    """One real ``edgeloop-agent serve`` process, configured the way a pod is: by environment."""
    import os
    import subprocess
    import sys

    site = node.rsplit("-gw", 1)[0]
    port = _free_port()
    state = home / "agents" / node
    state.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "EDGELOOP_AGENT_NODE__ID": node,
        "EDGELOOP_AGENT_NODE__SITE": site,
        "EDGELOOP_AGENT_NODE__COHORT": site,
        "EDGELOOP_AGENT_MODEL__DESIRED_MODEL_PATH": str(
            home / "nodes" / node / "desired-model.json"
        ),
        "EDGELOOP_AGENT_MODEL__CACHE_DIR": str(state / "models"),
        "EDGELOOP_AGENT_MODEL__POLL_INTERVAL_S": "0.2",
        "EDGELOOP_AGENT_DRIFT__WINDOW_READINGS": "48",
        "EDGELOOP_AGENT_DRIFT__SAMPLE_SIZE": "10",
        "EDGELOOP_AGENT_OUTBOX__PATH": str(state / "outbox.sqlite"),
        "EDGELOOP_AGENT_OUTBOX__INTAKE_URL": intake,
        "EDGELOOP_AGENT_OUTBOX__TOKEN": token,
        "EDGELOOP_AGENT_OUTBOX__RETRY_DELAYS_S": "[0.2, 0.5]",
        "EDGELOOP_AGENT_OUTBOX__FLUSH_INTERVAL_S": "0.2",
        "EDGELOOP_AGENT_OUTBOX__HEARTBEAT_INTERVAL_S": "0.3",
    }
    agent = Path(sys.executable).with_name("edgeloop-agent")
    proc = subprocess.Popen(
        [str(agent), "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=(state / "agent.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/v2/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"agent {node} did not start; see {state / 'agent.log'}"
                )
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _write_dataset(
    fleet: generate.FleetData,
    readings: pd.DataFrame,
    out: Path,
    config: cfg.SimulationConfig,
) -> None:
    data = generate.FleetData(
        readings.reset_index(drop=True), fleet.maintenance, fleet.sites, config
    )
    generate.write_fleet(data, out)


def _train(
    settings: PlatformSettings,
    data: Path,
    size: LoopSize,
    seed: int,
    mark: Callable[[str], None],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    args = pipeline_runs.pipeline_arguments(
        settings, data, n_estimators=size.n_estimators, seed=seed, **(extra or {})
    )
    registered = pipeline_runs.run_local(settings, args).registered
    mark(
        f"pipeline registered {registered['name']}:{registered['version']}"
        + (
            " and promoted it to champion"
            if registered["promoted"]
            else " (gates failed: not promoted)"
        )
    )
    return registered


def _roll_out(
    reconciler: Reconciler,
    rollout: EdgeRollout,
    version: str,
    mark: Callable[[str], None],
) -> EdgeRollout:
    deadline = time.monotonic() + 90
    seen = ""
    while time.monotonic() < deadline:
        rollout = reconciler.reconcile(rollout).rollout
        status = rollout.status
        if status.wave != seen and status.modelVersion == version:
            seen = status.wave
            mark(f"rollout of v{version}: wave {status.wave} ({status.phase})")
        if status.modelVersion == version and status.phase in {
            "Succeeded",
            "RolledBack",
            "Failed",
        }:
            mark(f"rollout of v{version}: {status.phase}")
            return rollout
        time.sleep(0.3)
    mark(
        f"rollout of v{version} did not finish in time ({rollout.status.phase}, wave {rollout.status.wave})"
    )
    return rollout


def _stream(
    live: pd.DataFrame,
    agents: dict[str, str],
    engine: TriggerEngine,
    mark: Callable[[str], None],
) -> str | None:
    """Send the live readings to the agents in time order; evaluate triggers as reports arrive."""
    sensors = list(cfg.SENSORS)
    pumps = sorted(live["pump_id"].unique())
    node_of = {p: f"{p.rsplit('-p', 1)[0]}-gw{1 + i % 2}" for i, p in enumerate(pumps)}
    steps = sorted(live["timestamp"].unique())
    by_step = live.groupby("timestamp")
    fired: str | None = None
    with httpx.Client(timeout=30) as client:
        for chunk_start in range(0, len(steps), 12):
            batches: dict[str, list[dict[str, Any]]] = {n: [] for n in agents}
            for step in steps[chunk_start : chunk_start + 12]:
                for row in by_step.get_group(step).itertuples(index=False):
                    values = {
                        c: (
                            None if pd.isna(getattr(row, c)) else float(getattr(row, c))
                        )
                        for c in sensors
                    }
                    batches[node_of[row.pump_id]].append(
                        {"entity": row.pump_id, "values": values}
                    )
            for node, readings in batches.items():
                if readings:
                    client.post(f"{agents[node]}/predict", json={"readings": readings})
            if chunk_start % 120 == 0:
                time.sleep(
                    1.1
                )  # let windows reach the intake; one evaluation round per second
                for decision in engine.evaluate():
                    if decision.fired and fired is None:
                        fired = decision.reason
    time.sleep(1.5)
    for decision in engine.evaluate():
        if decision.fired and fired is None:
            fired = decision.reason
    alerts = sorted({d.cohort for d in engine.decisions() if d.kind == "data_quality"})
    if alerts:
        mark(f"data-quality alerts (not counted as drift) for: {', '.join(alerts)}")
    return fired


def _drift_by_site(store: IntakeStore) -> dict[str, float]:
    windows, _ = store.drift_windows(None)
    shares: dict[str, list[float]] = {}
    for w in windows:
        shares.setdefault(w.cohort, []).append(w.drifted_share)
    return {site: float(np.max(v)) for site, v in sorted(shares.items())}


def _version(url: str) -> str:
    try:
        r = httpx.get(f"{url}/v2/models/edge-model", timeout=5)
        return str(r.json()["versions"][0]) if r.status_code == 200 else "-"
    except (httpx.HTTPError, KeyError, ValueError):
        return "-"


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


def print_summary(console: Console, result: LoopResult) -> None:
    """A readable end-of-loop summary."""
    from rich.table import Table

    console.rule("edgeloop closed loop: summary")
    table = Table(title="version per node")
    table.add_column("node")
    table.add_column("serving")
    for node, version in sorted(result.versions.items()):
        table.add_row(node, version)
    console.print(table)
    console.print(
        "max drifted-input share per site: "
        + ", ".join(f"{k} {v:.2f}" for k, v in result.drift.items())
    )
    fired = [d for d in result.decisions if d["fired"]]
    console.print(
        f"trigger decisions: {len(result.decisions)} recorded, {len(fired)} fired"
        + (f" ({fired[0]['reason']})" if fired else "")
    )
    for model in result.gates:
        failed = [g["name"] for g in model["gates"] if not g["passed"]]
        console.print(
            f"{model['model']}: promoted={model['promoted']} parent={model['parent'] or '-'} "
            f"gates={'all passed' if not failed else 'failed ' + ', '.join(failed)}"
        )
