"""``edgeloop demo``: the closed loop on one machine (what ``make demo`` runs)."""

from __future__ import annotations

import typer

from edgeloop.cli.output import emit, state, stderr


def demo(
    ctx: typer.Context,
    fast: bool = typer.Option(
        False, "--fast", help="A smaller fleet and model (what the tests run)."
    ),
    seed: int = typer.Option(
        11, help="Simulation and split seed (a small fleet: metrics vary with it)."
    ),
) -> None:
    """Simulate a fleet, train, gate, register and promote, then summarise."""
    from edgeloop.demo import run_demo
    from edgeloop.settings import load_settings

    summary = run_demo(load_settings(), stderr(), fast=fast, seed=seed)
    if state(ctx).output == "json":
        emit(ctx, summary)
