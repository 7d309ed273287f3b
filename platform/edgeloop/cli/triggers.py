"""``edgeloop triggers`` and ``edgeloop retrain``: decide, record, launch retraining."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from edgeloop.cli.output import emit, stderr
from edgeloop.core.errors import UsageError

if TYPE_CHECKING:
    from edgeloop.core.settings import PlatformSettings
    from edgeloop.monitor.intake.store import IntakeStore
    from edgeloop.triggers.engine import TriggerEngine
    from edgeloop.triggers.policy import TriggerPolicy

app = typer.Typer(help="Retraining triggers: evaluate, list.", no_args_is_help=True)

POLICY = typer.Option(
    None, "--policy", help="Trigger policy YAML (fields of TriggerPolicy)."
)
DATA = typer.Option(
    None,
    "--data",
    help="Dataset to retrain on when a trigger fires (runs the pipeline).",
)
FRESH = typer.Option(
    None,
    "--fresh-from",
    help="Previous training dataset: retrain on what the fleet sent since, plus recent history.",
)


def load_policy(policy_file: Path | None) -> TriggerPolicy:
    """The trigger policy from a YAML file (one line naming the field if invalid)."""
    from pydantic import ValidationError

    from edgeloop.core.yaml_files import invalid, read_yaml
    from edgeloop.triggers.policy import TriggerPolicy

    if policy_file is None:
        return TriggerPolicy()
    try:
        return TriggerPolicy.model_validate(
            read_yaml(policy_file, "the trigger policy") or {}
        )
    except ValidationError as exc:
        raise invalid(policy_file, exc) from exc


def trigger_engine(
    settings: PlatformSettings, store: IntakeStore, policy: TriggerPolicy
) -> TriggerEngine:
    """The engine over the intake's store, with its state and the audit log under home.

    The CLI and the loop service build it the same way, so both see (and
    record) the same decisions.
    """
    from edgeloop.provenance.audit import AuditLog
    from edgeloop.triggers.engine import TriggerEngine

    return TriggerEngine(
        store,
        settings.home / "triggers.json",
        policy,
        AuditLog(settings.audit_path()),
        settings.registry.model_name,
    )


def _engine(policy_file: Path | None) -> TriggerEngine:
    from edgeloop.core.settings import load_settings
    from edgeloop.monitor.intake.store import IntakeStore

    settings = load_settings()
    return trigger_engine(
        settings, IntakeStore.from_settings(settings), load_policy(policy_file)
    )


def _launch(
    data: Path | None,
    reason: str,
    fresh_from: Path | None = None,
    trigger: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the pipeline for a fired trigger: on ``data``, or on the fresh data window.

    With ``fresh_from`` (the previous training dataset) the dataset is assembled
    from what the intake collected plus recent history, and v2 is compared with
    the champion on held-out pumps' fresh rows (``holdout_from``). With
    ``EDGELOOP_PIPELINE__KFP_HOST`` set, the run is submitted to that Kubeflow
    Pipelines server (the dataset path must be readable there) instead of kfp.local.
    """
    import time as _time

    from edgeloop.core.settings import load_settings
    from edgeloop.train import pipeline_runs, retraining

    settings = load_settings()
    console = stderr()
    params: dict[str, Any] = {}
    if fresh_from is not None:
        data = settings.home / "datasets" / _time.strftime("fresh-%Y%m%d-%H%M%S")
        manifest = retraining.assemble(settings, fresh_from, data)
        first = min((p["day"] for p in manifest["partitions"]), default="")
        if first:
            params["holdout_from"] = first
        console.print(
            f"assembled {data}: {manifest['rows']['collected']:,} collected readings "
            f"from {len(manifest['partitions'])} partitions"
        )
    assert data is not None
    console.print(f"retraining on {data}: {reason}")
    host = settings.pipeline.kfp_host
    args = pipeline_runs.pipeline_arguments(settings, data, local=not host, **params)
    args["trigger"] = pipeline_runs.trigger_label(trigger, reason)
    if host:
        return {"submitted": pipeline_runs.submit(settings, args, host)}
    result = pipeline_runs.run_local(
        settings,
        args,
        lambda t, s: console.print(f"  {t}: {s}") if s != "started" else None,
        reason=reason,
        trigger=trigger,
    )
    return result.registered.model_dump()


def _row(decision: Any) -> dict[str, Any]:
    """A decision as data: tables elide its evidence, ``-o json`` keeps its structure."""
    data: dict[str, Any] = decision.model_dump(mode="json")
    return data


@app.command()
def evaluate(
    ctx: typer.Context,
    policy: Path | None = POLICY,
    data: Path | None = DATA,
    fresh_from: Path | None = FRESH,
) -> None:
    """Run the policy on reports received since the last evaluation; retrain if it fires."""
    if data is not None and fresh_from is not None:
        raise UsageError("give --data or --fresh-from, not both")
    engine = _engine(policy)
    decisions = engine.evaluate()
    fired = [d for d in decisions if d.fired]
    result: dict[str, Any] = {
        "decisions": [_row(d) for d in decisions],
        "fired": len(fired),
    }
    if fired and (data is not None or fresh_from is not None):
        result["registered"] = _launch(
            data, fired[0].reason, fresh_from, fired[0].model_dump(mode="json")
        )
    emit(ctx, result)


@app.command("list")
def list_(ctx: typer.Context, policy: Path | None = POLICY) -> None:
    """Every decision, fired or suppressed, with its evidence."""
    emit(ctx, [_row(d) for d in _engine(policy).decisions()], title="trigger decisions")


def retrain(
    ctx: typer.Context,
    reason: str = typer.Option(
        ..., "--reason", help="Why (recorded with the decision)."
    ),
    data: Path | None = DATA,
    fresh_from: Path | None = FRESH,
    code_change: bool = typer.Option(
        False,
        "--code-change",
        help="Record it as a code-change trigger (what the CI job in docs/closed-loop.md passes).",
    ),
) -> None:
    """Ask for a retraining by hand (or from CI); with --data the pipeline runs now."""
    # Every input is checked before the request is recorded and audited: a
    # rejected command leaves no trigger behind.
    if not reason.strip():
        raise UsageError("--reason must not be empty")
    if data is not None and fresh_from is not None:
        raise UsageError("give --data or --fresh-from, not both")
    for given in (data, fresh_from):
        if given is not None and not (given / "schema.yaml").exists():
            raise UsageError(f"{given}: not a dataset (no schema.yaml)")
    decision = _engine(None).manual(
        reason, kind="code_change" if code_change else "manual"
    )
    result: dict[str, Any] = {"decision": _row(decision)}
    if data is not None or fresh_from is not None:
        result["registered"] = _launch(
            data, reason, fresh_from, decision.model_dump(mode="json")
        )
    emit(ctx, result)
