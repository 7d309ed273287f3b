"""The end-of-loop summary: what happened, per node and site, and where to look next."""

from __future__ import annotations

import shlex
from pathlib import Path

from rich.console import Console
from rich.table import Table

from edgeloop.demo.run import LoopResult


def print_summary(console: Console, result: LoopResult) -> None:
    """Timeline, versions per node, drift per site, triggers, gates, integrity, lineage, UIs."""
    console.rule("edgeloop closed loop: summary")
    timeline = Table(title="timeline", show_header=False, box=None)
    for at, text in result.timeline:
        timeline.add_row(f"{at:6.1f}s", text)
    console.print(timeline)

    nodes = Table(title="version per node")
    nodes.add_column("node")
    nodes.add_column("serving")
    for node, version in sorted(result.versions.items()):
        nodes.add_row(node, f"v{version}" if version != "-" else "-")
    console.print(nodes)

    _drift(console, result)
    _decisions_and_models(console, result)
    _fleet_lines(console, result)
    _look_closer(console, result)


def _drift(console: Console, result: LoopResult) -> None:
    """Per site and version, worst drifted share against each reference, and the legend."""
    drift = Table(title="drift per site: worst share of inputs drifted, against …")
    for column in (
        "site",
        "model",
        "windows",
        "own\nbaseline",
        "training\n(agent)",
        "training\n(Evidently)",
        "drifted vs baseline",
    ):
        drift.add_column(column, no_wrap=column != "drifted vs baseline")
    for site, versions in sorted(result.drift.items()):
        for version, row in sorted(versions.items()):
            evidently = row.get("evidently_share")
            drift.add_row(
                site,
                f"v{version}",
                str(row["windows"]),
                f"{row['max_baseline_share']:.2f}" if row["judged"] else "building",
                f"{row['max_reference_share']:.2f}",
                "-" if evidently is None else f"{evidently:.2f}",
                ", ".join(row["drifted_inputs"][:4])
                + (" …" if len(row["drifted_inputs"]) > 4 else ""),
            )
    console.print(drift)
    console.print(DRIFT_COLUMNS, style="dim")


DRIFT_COLUMNS = (
    "  own baseline: against the node's first windows on that version; the drift\n"
    "    trigger reads this one (a retrained version starts a new baseline).\n"
    "  training: against the version's training data, the whole fleet's: the\n"
    "    agent's PSI on reference bins, and Evidently's tests on row samples (the\n"
    "    snapshots in the Evidently UI). A site unlike the fleet average scores high\n"
    "    here without drifting; a retrained model learns the site's new normal, it\n"
    "    does not make the site like the rest."
)
"""The drift table's legend: which reference each column compares with (docs/closed-loop.md)."""


def _decisions_and_models(console: Console, result: LoopResult) -> None:
    """Trigger decisions, data-quality alerts, gates per version, alarm quality."""
    fired = [d for d in result.decisions if d["fired"]]
    quality = sorted(
        {d["cohort"] for d in result.decisions if d["kind"] == "data_quality"}
    )
    console.print(
        f"trigger decisions: {len(result.decisions)} recorded, {len(fired)} fired"
        + (f" — {fired[0]['reason']}" if fired else "")
    )
    if quality:
        console.print(f"data-quality alerts (not drift): {', '.join(quality)}")
    for model in result.gates:
        failed = [g["name"] for g in model["gates"] if not g["passed"]]
        console.print(
            f"{model['model']}: promoted={model['promoted']} parent={model['parent'] or '-'} "
            f"gates={'all passed' if not failed else 'failed ' + ', '.join(failed)}"
        )
        console.print(
            "  " + holdout_events(model.get("events") or {}, model.get("threshold"))
        )
    for q in result.alarm_quality:
        console.print(
            f"delayed labels, v{q['model_version']} in the field: {q['readings']:,} readings judged, "
            f"{q['alarms']} alarms, precision {q['precision']}, recall {q['recall']}"
        )


def holdout_events(events: dict[str, float | None], threshold: float | None) -> str:
    """What a planner asks of a version, on its holdout: failures caught, lead, false alarms."""
    recall = events.get("event_recall")
    lead = events.get("median_lead_hours")
    false_alarms = events.get("false_alarms_per_asset_month")
    parts = [
        "holdout:",
        "failures alarmed n/a"
        if recall is None
        else f"{recall:.0%} of failures alarmed",
        "" if lead is None else f"(median lead {lead:.0f} h),",
        "false alarms n/a"
        if false_alarms is None
        else f"{false_alarms:.1f} false alarms per pump-month,",
        "threshold n/a" if threshold is None else f"threshold {threshold:.4g}",
    ]
    return " ".join(p for p in parts if p)


def _fleet_lines(console: Console, result: LoopResult) -> None:
    """Integrity of what was collected, the offline site, and v2's lineage."""
    if result.integrity:
        console.print(
            f"collected readings: {sum(n['unique'] for n in result.integrity['nodes'].values()):,} "
            f"of {sum(n['sent'] for n in result.integrity['nodes'].values()):,} sent; "
            f"lost {result.integrity['lost']}, duplicated {result.integrity['duplicated']}"
        )
    if result.offline:
        console.print(
            f"offline site {result.offline['site']}: buffered {sum(result.offline['buffered_reports'].values())} "
            f"reports, caught up: {result.offline['caught_up']}"
        )
    if result.lineage:
        lin = result.lineage
        trig = (lin.get("training") or [{}])[-1].get("trigger") or {}
        console.print(
            f"lineage of {lin['model']}: {len(lin['data']['partitions'])} collected partitions "
            f"-> data {lin['data']['data_hash'][:12]}… -> run {lin['pipeline_run_id']} "
            f"-> bundle {lin['bundle_sha256'][:12]}… -> {len(lin['rollouts'])} rollout decisions "
            f"-> {len(lin['fleet']['nodes'])} nodes; triggered by: {trig.get('reason', '-')} "
            f"({len(trig.get('evidence', {}).get('reports', []))} drift reports)"
        )


def _look_closer(console: Console, result: LoopResult) -> None:
    """The commands that open what the loop left behind."""
    from edgeloop.core.commands import path, tool

    home = Path(result.home).absolute()
    edgeloop = tool("edgeloop")
    console.rule("look closer (paste into any shell)")
    console.print(f"  export EDGELOOP_HOME={path(home)}")
    console.print(
        f"  {edgeloop} models lineage pump-failure@champion   # the whole chain"
    )
    console.print(
        f"  {edgeloop} triggers list; {edgeloop} audit list; {edgeloop} audit verify"
    )
    rollout = home / "edgerollouts" / "pumps.yaml"
    console.print(
        f"  {edgeloop} rollout history -f {path(rollout)}   # every wave decision"
    )
    console.print(
        f"  {tool('mlflow')} ui --backend-store-uri "
        f"{shlex.quote(f'sqlite:///{home}/mlflow.db')} --host 127.0.0.1 --port 5000   # MLflow UI"
    )
    console.print(
        f"  {tool('evidently')} ui --workspace {path(home / 'evidently')} "
        "--host 127.0.0.1 --port 8765   # Evidently UI"
    )
    console.print(f"finished in {result.elapsed_s:.0f} s")
