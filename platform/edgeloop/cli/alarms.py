"""``edgeloop alarms``: which nodes alarmed, and which sensors were behind it.

Every alarm an agent raises names its top sensors (occlusion on the node);
each drift window it reports counts its alarms by the sensor named first. These
commands read those windows: from the intake's API (``--intake URL`` or
``EDGELOOP_INTAKE__URL``, with the reader token) or, without one, from the
local intake's database.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import typer

from edgeloop.cli.output import emit

app = typer.Typer(
    help="Alarms from the fleet and the sensors behind them: list, explain.",
    no_args_is_help=True,
)

INTAKE = typer.Option(
    "",
    "--intake",
    help="Intake base URL (default EDGELOOP_INTAKE__URL; none: the local intake database).",
)


def _windows(intake: str, node: str, limit: int) -> list[dict[str, Any]]:
    from edgeloop.core.errors import UsageError
    from edgeloop.core.settings import load_settings

    settings = load_settings()
    url = intake or settings.intake.url
    if url:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--intake {url!r}: expected an http(s):// URL")
        from edgeloop.rollout.fleet import IntakeFleet

        return IntakeFleet(url, token=settings.intake.reader_token).alarms(node, limit)
    from edgeloop.monitor.intake.store import IntakeStore

    return IntakeStore.from_settings(settings).recent_alarms(node, limit)


def causes_text(causes: dict[str, int], top: int = 3) -> str:
    """``vibration_rms ×5, bearing_temp ×2`` (most named first)."""
    ranked = sorted(causes.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return ", ".join(f"{sensor} ×{count}" for sensor, count in ranked) or "-"


@app.command("list")
def list_(
    ctx: typer.Context,
    intake: str = INTAKE,
    node: str = typer.Option("", "--node", help="Only this node."),
    limit: int = typer.Option(50, min=1, max=1000, help="Newest windows shown."),
) -> None:
    """The newest windows that alarmed: node, site, version, alarms, sensors behind them."""
    rows = _windows(intake, node, limit)
    emit(
        ctx,
        [
            {
                "node": r["node"],
                "site": r["site"],
                "version": r["model_version"],
                "window_end": r["window_end"][:19],
                "alarms": r["alarms"],
                "named_first": causes_text(r["alarm_causes"]),
            }
            for r in rows
        ],
    )


@app.command()
def explain(
    ctx: typer.Context,
    node: str = typer.Argument(..., help="The node whose alarms to explain."),
    intake: str = INTAKE,
    limit: int = typer.Option(200, min=1, max=1000, help="Newest windows counted."),
) -> None:
    """Per sensor, how many of a node's recent alarms named it first, and the share."""
    from edgeloop.core.errors import UsageError

    rows = _windows(intake, node, limit)
    if not rows:
        raise UsageError(f"node {node!r}: no alarms in its newest reported windows")
    counted: Counter[str] = Counter()
    for r in rows:
        counted.update(r["alarm_causes"])
    alarms = sum(r["alarms"] for r in rows)
    emit(
        ctx,
        [
            {
                "sensor": sensor,
                "alarms_named_first": count,
                "share_of_alarms": round(count / alarms, 3) if alarms else 0.0,
            }
            for sensor, count in sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        or [{"sensor": "-", "alarms_named_first": 0, "share_of_alarms": 0.0}],
    )
