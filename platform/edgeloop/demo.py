"""``make demo``: the loop on one machine with embedded defaults.

Today it covers step ① end to end: simulate a fleet, run the real
``train-edge-model`` pipeline with kfp.local, register and promote in the
embedded MLflow store, and summarise metrics, gates, digest and lineage.

Every piece is the production code path; only the settings are local.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from edgeloop import pipeline_runs
from edgeloop.registry import Registry, parse_ref
from edgeloop.settings import PlatformSettings
from edgeloop.simulator import config as cfg
from edgeloop.simulator import generate


@dataclass(frozen=True)
class DemoSize:
    """Fleet and model size of a demo run."""

    sites: int
    pumps_per_site: int
    days: float
    n_estimators: int


FULL = DemoSize(sites=4, pumps_per_site=5, days=60, n_estimators=200)
FAST = DemoSize(sites=3, pumps_per_site=3, days=30, n_estimators=40)


def run_demo(
    settings: PlatformSettings, console: Console, fast: bool = False, seed: int = 11
) -> dict[str, Any]:
    """Run the demo in ``<home>/demo`` (wiped first) and return its summary."""
    size = FAST if fast else FULL
    home = (settings.home / "demo").resolve()
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    demo_settings = settings.model_copy(update={"home": home})
    timeline: list[tuple[float, str]] = []
    start = time.perf_counter()

    def mark(text: str) -> None:
        timeline.append((time.perf_counter() - start, text))
        console.print(f"[{time.perf_counter() - start:6.1f}s] {text}")

    data_dir = home / "fleet"
    config = cfg.SimulationConfig(
        sites=size.sites, pumps_per_site=size.pumps_per_site, days=size.days, seed=seed
    )
    fleet = generate.simulate(config)
    generate.write_fleet(fleet, data_dir)
    mark(
        f"simulated {len(fleet.readings):,} readings from {fleet.readings['pump_id'].nunique()} pumps "
        f"at {config.sites} sites, {len(fleet.maintenance)} failures"
    )

    def progress(task: str, status: str) -> None:
        if status != "started":
            mark(f"pipeline step {task}: {'ok' if status == 'SUCCESS' else status}")

    arguments = pipeline_runs.pipeline_arguments(
        demo_settings, data_dir, n_estimators=size.n_estimators, seed=seed
    )
    result = pipeline_runs.run_local(demo_settings, arguments, progress)
    registered = result.registered
    mark(
        f"registered {registered['name']}:{registered['version']}"
        + (
            " and promoted it to champion"
            if registered["promoted"]
            else " (not promoted)"
        )
    )

    registry = Registry(demo_settings.tracking_uri())
    ref = parse_ref(f"{registered['name']}:{registered['version']}")
    lineage = registry.lineage(ref)
    with_dir = home / "bundle-check"
    _, bundle = registry.download(ref, with_dir)
    from edgeloop_agent.contracts import read_manifest

    manifest = read_manifest(bundle)
    summary = {
        "model": f"{registered['name']}:{registered['version']}",
        "promoted": registered["promoted"],
        "bundle_sha256": registered["bundle_sha256"],
        "metrics": manifest.metrics,
        "gates": [g.model_dump() for g in manifest.gates],
        "latency": [p.model_dump() for p in manifest.latency],
        "lineage": lineage,
        "timeline": timeline,
        "tracking_uri": demo_settings.tracking_uri(),
        "seconds": time.perf_counter() - start,
    }
    _print_summary(console, summary, demo_settings)
    return summary


def _print_summary(
    console: Console, summary: dict[str, Any], settings: PlatformSettings
) -> None:
    console.rule("edgeloop demo: summary")
    console.print(
        f"model {summary['model']}  champion={'yes' if summary['promoted'] else 'no'}  "
        f"bundle sha256 {summary['bundle_sha256']}"
    )
    metrics = Table(title="holdout metrics")
    for col in ("metric", "value"):
        metrics.add_column(col)
    for key, value in summary["metrics"].items():
        metrics.add_row(key, "-" if value is None else f"{value:.4f}")
    console.print(metrics)
    gates = Table(title="gates")
    for col in ("gate", "passed", "detail"):
        gates.add_column(col)
    for gate in summary["gates"]:
        gates.add_row(gate["name"], "yes" if gate["passed"] else "NO", gate["detail"])
    console.print(gates)
    latency = Table(title="latency per device profile (measured here)")
    for col in ("profile", "threads", "1-row p50/p99 ms", "100-row p50/p99 ms", "fits"):
        latency.add_column(col)
    for p in summary["latency"]:
        latency.add_row(
            p["device_profile"],
            str(p["threads"]),
            f"{p['single_p50_ms']:.3f} / {p['single_p99_ms']:.3f}",
            f"{p['batch_p50_ms']:.3f} / {p['batch_p99_ms']:.3f}",
            "yes" if p["fits"] else "NO",
        )
    console.print(latency)
    lin = summary["lineage"]
    console.print(
        f"lineage: data {lin['data_hash'][:16]}… code {lin['code_revision']} "
        f"pipeline run {lin['pipeline_run_id']} mlflow run {lin['mlflow_run_id']} "
        f"parent {lin['parent_champion'] or '(first model)'}"
    )
    db = summary["tracking_uri"]
    console.print(
        f"finished in {summary['seconds']:.0f}s. Open the MLflow UI on this store with:"
    )
    console.print(
        f"  .venv/bin/mlflow ui --backend-store-uri {db} --host 127.0.0.1 --port 5000"
    )
    console.print(
        f"  then browse http://127.0.0.1:5000 (models: {summary['model'].split(':')[0]})"
    )
    console.print(
        f"  or: EDGELOOP_HOME={settings.home} .venv/bin/edgeloop models show {summary['model']}"
    )


def demo_dir(settings: PlatformSettings) -> Path:
    """Where the demo keeps its state."""
    return (settings.home / "demo").resolve()
