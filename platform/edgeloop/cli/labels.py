"""``edgeloop labels``: ingest delayed labels (work orders), score alarms per version."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeloop.cli.output import emit

app = typer.Typer(
    help="Delayed labels: maintenance work orders -> alarm precision/recall.",
    no_args_is_help=True,
)


@app.command()
def ingest(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ...,
        help="Work-order CSV (the simulator's maintenance log, or any CSV with an entity and a failure time).",
    ),
    entity_column: str = typer.Option("pump_id", help="Column naming the asset."),
    time_column: str = typer.Option(
        "failed_at", help="Column with the failure time (ISO 8601)."
    ),
    horizon_hours: float = typer.Option(
        48.0, min=1.0, help="Alarm horizon the model was trained for."
    ),
) -> None:
    """Add work orders to the label store and show alarm precision/recall per version and day."""
    from edgeloop.core.settings import load_settings
    from edgeloop.monitor import labels
    from edgeloop.provenance.audit import AuditLog

    settings = load_settings()
    result = labels.ingest(file, settings.collect_root(), entity_column, time_column)
    AuditLog(settings.audit_path()).append("labels", str(file.resolve()), **result)
    quality = labels.alarm_quality(
        settings.collect_root(), settings.registry.model_name, horizon_hours
    )
    emit(ctx, {**result, "alarm_quality": quality}, title="labels")
