"""The demo's first stop (``edgeloop demo --train-only``): the model v1 it trained.

The loop demo stops after step ① when asked; this module reads what that step
registered (metrics, gates, latency and lineage from the bundle's manifest and
the registry) and prints it.
"""

from __future__ import annotations

import shlex
from typing import Any

from rich.console import Console
from rich.table import Table

from edgeloop.core.settings import PlatformSettings
from edgeloop.provenance.registry import Registry, parse_ref
from edgeloop_agent.contracts import RegisteredModel


def first_model_summary(
    settings: PlatformSettings, registry: Registry, registered: RegisteredModel
) -> dict[str, Any]:
    """What the first stop of the demo reports about the model it trained.

    Metrics, gates and latency come from the registered bundle's manifest (what
    an agent will read), lineage from the registry.
    """
    ref = parse_ref(registered.ref)
    manifest = registry.manifest(ref)
    return {
        "model": registered.ref,
        "promoted": registered.promoted,
        "bundle_sha256": registered.bundle_sha256,
        "metrics": manifest.metrics,
        "gates": [g.model_dump() for g in manifest.gates],
        "latency": [p.model_dump() for p in manifest.latency],
        "lineage": registry.lineage(ref),
        "tracking_uri": settings.tracking_uri(),
    }


def print_first_model(
    console: Console, summary: dict[str, Any], settings: PlatformSettings
) -> None:
    """The first stop's summary: metrics, gates, latency, lineage, where to look."""
    console.rule("edgeloop demo (stopped after training): summary")
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
    from edgeloop.core.commands import path, tool

    db = summary["tracking_uri"]
    console.print("Open the MLflow UI on this store with:")
    console.print(
        f"  {tool('mlflow')} ui --backend-store-uri {shlex.quote(db)} "
        "--host 127.0.0.1 --port 5000"
    )
    console.print(
        f"  then browse http://127.0.0.1:5000 (models: {summary['model'].split(':')[0]})"
    )
    console.print(
        f"  or: EDGELOOP_HOME={path(settings.home)} {tool('edgeloop')} "
        f"models show {summary['model']}"
    )
