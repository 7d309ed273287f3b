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
    loop: bool = typer.Option(
        False,
        "--loop",
        help="EXPERIMENTAL closed loop (agents, rollout, drift, retraining); its drift "
        "signal is not right yet, see docs/status.md.",
    ),
) -> None:
    """Simulate a fleet, train, gate, register and promote, then summarise.

    With ``--loop``: the compressed closed loop (see ``edgeloop.loop_demo``).
    """
    from edgeloop.demo import run_demo
    from edgeloop.settings import load_settings

    if loop:
        from dataclasses import asdict

        from edgeloop.loop_demo import LoopSize, print_summary, run_loop

        size = (
            LoopSize(pumps_per_site=3, live_days=8, n_estimators=60)
            if fast
            else LoopSize()
        )
        result = run_loop(load_settings(), stderr(), size, seed=seed)
        print_summary(stderr(), result)
        if state(ctx).output == "json":
            emit(ctx, asdict(result))
        return
    summary = run_demo(load_settings(), stderr(), fast=fast, seed=seed)
    if state(ctx).output == "json":
        emit(ctx, summary)
