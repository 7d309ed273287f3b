"""What a person reads about one model version: readable times, every gate, the alarm threshold.

Shared by ``models show`` and the end of ``pipeline run``: JSON gets the same
fields as extra keys; a terminal gets the version, then a gates table and the
metrics.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer

from edgeloop.cli.output import emit, state
from edgeloop.provenance.registry import ModelRef, Registry
from edgeloop_agent.contracts import ThresholdPolicyRecord


def details(registry: Registry, name: str, version: int) -> dict[str, Any]:
    """Gate results, rounded metrics and the alarm threshold from the verified manifest."""
    manifest = registry.manifest(ModelRef(name, version=version))
    return {
        "gate_results": [
            {"gate": g.name, "passed": g.passed, "detail": g.detail}
            for g in manifest.gates
        ],
        "metrics": {
            k: (round(v, 4) if isinstance(v, float) else v)
            for k, v in sorted(manifest.metrics.items())
        },
        "alarm_threshold": round(manifest.scoring().threshold, 6),
        "threshold_policy": policy_line(manifest.scoring().threshold_policy),
    }


def policy_line(policy: ThresholdPolicyRecord | None) -> str:
    """How the threshold was chosen, in one line (``-`` for bundles that predate it)."""
    if policy is None:
        return "-"
    if policy.target_alarm_rate is not None:
        return (
            f"anomaly model: {policy.target_alarm_rate:.2%} of the training rows "
            "alarm (no labels)"
        )
    budget = policy.max_false_alarms_per_asset_month
    rule = f"precision >= {policy.target_precision:g}" + (
        f", <= {budget:g} false alarms/asset-month" if budget is not None else ""
    )
    if not policy.policy_met:
        return f"{rule}: not met on the holdout, best-F1 threshold used"
    if policy.safe_interval is None:
        return f"{rule}: met"
    low, high = policy.safe_interval
    return f"{rule}: met; middle of the safe interval ({low:.4g}, {high:.4g}]"


def readable_time(epoch_ms: int) -> str:
    """MLflow's epoch milliseconds as an ISO time in UTC."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="seconds")


def show(ctx: typer.Context, summary: dict[str, Any], extra: dict[str, Any]) -> None:
    """JSON: one object; table: the summary, then the gates, then the metrics."""
    if state(ctx).output == "json":
        emit(ctx, {**summary, **extra})
        return
    emit(
        ctx,
        {
            **summary,
            "alarm_threshold": extra["alarm_threshold"],
            "threshold_policy": extra["threshold_policy"],
        },
    )
    emit(ctx, extra["gate_results"], title="gates")
    emit(
        ctx,
        [{"metric": k, "value": v} for k, v in extra["metrics"].items()],
        title="metrics",
    )
