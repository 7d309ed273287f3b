"""``edgeloop monitor``: Evidently runs into a workspace, HTML reports, the UI command."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from edgeloop.cli.output import emit, progress_bar
from edgeloop.core.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from edgeloop.core.settings import PlatformSettings

app = typer.Typer(
    help="Monitoring with Evidently: run, report, ui.", no_args_is_help=True
)


def _paths() -> tuple[PlatformSettings, str, Path]:
    from edgeloop.core.settings import load_settings

    settings = load_settings()
    return settings, settings.monitor_workspace(), settings.home / "monitor.json"


@app.command()
def run(
    ctx: typer.Context,
    model: str | None = typer.Option(
        None, help="Registered model (default from settings)."
    ),
    assets: Path | None = typer.Option(
        None,
        "--assets",
        help="Asset register (fleet.json with pumps: pump_id, pump_type): adds pump-type cohorts.",
    ),
) -> None:
    """One pass: a drift run per new (version, cohort, hour) of samples (+ data summary with monitor.summary)."""
    from edgeloop.monitor.assets import pump_types
    from edgeloop.monitor.evidently_runs import MonitorWorkspace, monitor_pass
    from edgeloop.monitor.intake.store import IntakeStore
    from edgeloop.provenance.registry import Registry

    settings, workspace_dir, state_file = _paths()
    name = model or settings.registry.model_name
    marks = json.loads(state_file.read_text()) if state_file.exists() else {}
    after = datetime.fromisoformat(marks[name]) if name in marks else None
    with progress_bar(ctx, "Evidently runs") as progress:
        records, newest = monitor_pass(
            IntakeStore.from_settings(settings),
            Registry(settings.tracking_uri()),
            MonitorWorkspace(workspace_dir, settings.monitor.secret),
            name,
            after,
            pump_types=pump_types(assets) if assets is not None else None,
            summary=settings.monitor.summary,
            progress=progress,
        )
    if newest is not None:
        marks[name] = newest.isoformat()
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps(marks))
    emit(ctx, [asdict(r) for r in records], title="evidently runs")


@app.command()
def report(
    ctx: typer.Context,
    ref: str = typer.Argument(
        ..., help="NAME or NAME:VERSION (default: the champion)."
    ),
    out: Path = typer.Option(..., "--out", help="HTML file to write."),
    cohort: str | None = typer.Option(
        None, help="Only this cohort (site or pump type)."
    ),
) -> None:
    """All samples of one version (optionally one cohort) against its reference, as HTML."""
    import pandas as pd

    from edgeloop.monitor.evidently_runs import (
        reference_frame,
        run_report,
        sample_groups,
    )
    from edgeloop.monitor.intake.store import IntakeStore
    from edgeloop.provenance.registry import Registry, parse_ref

    settings, _, _ = _paths()
    registry = Registry(settings.tracking_uri())
    model_ref = parse_ref(ref)
    version = registry.resolve(model_ref)
    groups = sample_groups(
        IntakeStore.from_settings(settings), model_ref.name, str(version)
    )
    frames = [f for (_, c, _), f in groups.items() if cohort is None or c == cohort]
    if not frames:
        raise NotFoundError(
            f"no samples received for {model_ref.name}:{version}"
            + (f" in cohort {cohort}" if cohort else "")
        )
    if out.suffix.lower() not in {".html", ".htm"}:
        raise UsageError(f"{out}: the report is HTML; use a .html file name")
    current = pd.concat(frames, ignore_index=True)
    snapshot = run_report(
        current,
        reference_frame(registry, model_ref.name, version),
        {
            "model": model_ref.name,
            "version": str(version),
            "cohort": cohort or "all",
            "window": "all",
        },
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(out))
    emit(
        ctx,
        {"model": f"{model_ref.name}:{version}", "rows": len(current), "out": str(out)},
    )


@app.command()
def ui(ctx: typer.Context, port: int = typer.Option(8765, min=1, max=65535)) -> None:
    """How to open the Evidently UI on the workspace (or where the remote one is)."""
    _, workspace, _ = _paths()
    if workspace.startswith(("http://", "https://")):
        emit(ctx, {"workspace": workspace, "command": "", "url": workspace})
        return
    from edgeloop.core.commands import path, tool

    command = (
        f"{tool('evidently')} ui --workspace {path(workspace)} "
        f"--host 127.0.0.1 --port {port}"
    )
    emit(
        ctx,
        {
            "workspace": workspace,
            "command": command,
            "url": f"http://127.0.0.1:{port}",
        },
    )
