"""``edgeloop demo``: the closed loop on one machine (what ``make demo`` runs)."""

from __future__ import annotations

from pathlib import Path

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
        help="Stop after step 1: simulate, train, gate, register, promote v1.",
    ),
) -> None:
    """The closed loop: train, roll out to 6 agents, drift, retrain, roll out again, summarise.

    Everything runs on 127.0.0.1 under ``$EDGELOOP_HOME/demo-loop`` (wiped
    first); every process it starts is stopped on exit or Ctrl-C.
    """
    from dataclasses import asdict

    from edgeloop.core.settings import load_settings
    from edgeloop.demo.first_model import print_first_model
    from edgeloop.demo.run import FAST, LoopSize, run_loop
    from edgeloop.demo.summary import print_summary

    settings = load_settings()
    result = run_loop(
        settings,
        stderr(),
        FAST if fast else LoopSize(),
        seed=seed,
        stop_after="train" if train_only else None,
    )
    if train_only:
        home = settings.model_copy(update={"home": Path(result.home)})
        print_first_model(stderr(), result.first_model, home)
        if state(ctx).output == "json":
            emit(ctx, result.first_model)
        return
    print_summary(stderr(), result)
    if state(ctx).output == "json":
        emit(ctx, asdict(result))
