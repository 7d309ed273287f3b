"""The demo's closing reports: drift per site, Evidently snapshots, gates per version."""

from __future__ import annotations

from typing import Any

from edgeloop.demo.state import Loop
from edgeloop.monitor.evidently_runs import MonitorWorkspace, monitor_pass
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop.provenance.registry import Registry, parse_ref


def drift_by_site(store: IntakeStore) -> dict[str, dict[str, Any]]:
    """Per site and version: worst drift vs baseline, vs training data, inputs that drifted."""
    out: dict[str, dict[str, Any]] = {}
    for row in store.drift_summary():
        site = out.setdefault(row["site"], {})
        site[row["version"]] = row
    return out


def evidently(loop: Loop, store: IntakeStore, days: float) -> dict[str, Any]:
    """One Evidently run per version and site over the live period.

    Per day would be 30 runs of ~5 s each (Evidently renders plotly figures for
    every metric; see docs/benchmarks.md), too slow for a 5-minute demo.
    """
    workspace = MonitorWorkspace(loop.home / "evidently")

    def progress(done: int, total: int, detail: str) -> None:
        if done < total:  # a run takes seconds: say which one is running
            loop.console.print(
                f"          · Evidently {done + 1}/{total}: {detail}", style="dim"
            )

    records, _ = monitor_pass(
        store,
        loop.registry,
        workspace,
        "pump-failure",
        None,
        bucket_s=int(days * 86400) * 4,
        progress=progress,
    )
    shares: dict[str, dict[str, float]] = {}
    for r in records:
        if r.drifted_columns is not None:
            site = shares.setdefault(r.cohort, {})
            site[r.version] = max(site.get(r.version, 0.0), r.drifted_columns)
    loop.mark(f"Evidently: {len(records)} snapshots (per version and site)")
    return {
        "snapshots": len(records),
        "workspace": str(workspace.path),
        "project": workspace.project_id("pump-failure") if records else None,
        # worst drifted share per site and version, vs the version's training sample
        "drifted_share": shares,
    }


def with_evidently(
    drift: dict[str, dict[str, Any]], shares: dict[str, dict[str, float]]
) -> dict[str, dict[str, Any]]:
    """The drift table's rows with Evidently's share beside the agent's (None: no run)."""
    return {
        site: {
            version: {**row, "evidently_share": shares.get(site, {}).get(version)}
            for version, row in versions.items()
        }
        for site, versions in drift.items()
    }


def gates(registry: Registry, models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per trained version: promoted or not, its parent, every gate, event metrics."""
    out = []
    for m in models:
        ref = parse_ref(f"{m['name']}:{m['version']}")
        lineage = registry.lineage(ref)
        manifest = registry.manifest(ref)
        out.append(
            {
                "model": f"{m['name']}:{m['version']}",
                "promoted": m["promoted"],
                "parent": lineage["parent_champion"],
                "gates": lineage["gates"],
                "events": {
                    key: manifest.metrics.get(key)
                    for key in (
                        "event_recall",
                        "median_lead_hours",
                        "false_alarms_per_asset_month",
                    )
                },
                "threshold": manifest.scoring().threshold,
            }
        )
    return out
