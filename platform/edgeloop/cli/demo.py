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
    train_only: bool = typer.Option(
        False,
        "--train-only",
        help="Only step 1: simulate, train, gate, register, promote (about 30 s).",
    ),
) -> None:
    """The closed loop: train, roll out to 6 agents, drift, retrain, roll out again, summarise.

    Everything runs on 127.0.0.1 under ``$EDGELOOP_HOME/demo-loop`` (wiped
    first); every process it starts is stopped on exit or Ctrl-C.
    """
    from edgeloop.settings import load_settings

    if train_only:
        from edgeloop.demo import run_demo

        summary = run_demo(load_settings(), stderr(), fast=fast, seed=seed)
        if state(ctx).output == "json":
            emit(ctx, summary)
        return
    from dataclasses import asdict

    from edgeloop.loop_demo import FAST, LoopSize, print_summary, run_loop

    result = run_loop(
        load_settings(), stderr(), FAST if fast else LoopSize(), seed=seed
    )
    print_summary(stderr(), result)
    if state(ctx).output == "json":
        emit(ctx, asdict(result))
