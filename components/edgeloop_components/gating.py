"""Gates a challenger must pass before it may become champion.

Pure functions over metric reports (see :mod:`evaluation`). The champion and
challenger are scored on the same holdout rows, so a difference is the model's,
not the data's.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from edgeloop_agent.contracts import GateResult


class GatePolicy(BaseModel):
    """Thresholds for the quality gates (pipeline parameters)."""

    model_config = ConfigDict(extra="forbid")

    primary_metric: str = Field(
        "pr_auc", pattern="^(roc_auc|pr_auc|recall_at_precision)$"
    )
    max_regression: float = Field(0.02, ge=0, le=1)
    """Largest allowed drop of the primary metric vs the champion, overall and per slice."""
    min_roc_auc: float = Field(0.7, ge=0, le=1)
    """Absolute floor, applied to every model (and the only bar for the first one)."""
    min_pr_auc: float = Field(0.2, ge=0, le=1)
    parity_tolerance: float = Field(1e-5, gt=0)
    """Largest allowed |p_onnx - p_xgb| on the holdout."""
    dropout_max_ratio: float = Field(2.0, ge=1)
    """With any one sensor dead, the healthy rows' alarm rate may be at most this
    many times the rate with every sensor (``dropout`` gate)."""
    dropout_rate_floor: float = Field(0.01, ge=0, le=1)
    """The all-sensor rate used is at least this, so a model with no false alarms
    is not failed for one."""
    min_event_recall: float | None = Field(None, ge=0, le=1)
    """Optional floor on the share of failures alarmed in time."""
    max_false_alarms_per_asset_month: float | None = Field(None, ge=0)
    """Optional ceiling on false-alarm episodes per asset-month."""
    max_alarm_rate_ratio: float = Field(3.0, ge=1)
    """Anomaly models: the holdout alarm rate may be at most this × the target."""
    min_stability: float = Field(0.8, ge=-1, le=1)
    """Anomaly models: Spearman correlation of holdout scores with another seed."""


def absolute_gates(report: dict[str, Any], policy: GatePolicy) -> list[GateResult]:
    """Floors on the overall metrics, the dropout gate and the optional event gates."""
    overall = report["overall"]
    gates = []
    for metric, floor in (
        ("roc_auc", policy.min_roc_auc),
        ("pr_auc", policy.min_pr_auc),
    ):
        value = overall.get(metric)
        passed = value is not None and value >= floor
        shown = "n/a" if value is None else f"{value:.4f}"
        gates.append(
            GateResult(
                name=f"min_{metric}",
                passed=passed,
                detail=f"{metric} {shown} >= {floor}",
            )
        )
    if report.get("dropout"):
        gates.append(dropout_gate(report["dropout"], policy))
    gates += event_gates(overall, policy)
    return gates


def dropout_gate(rates: dict[str, Any], policy: GatePolicy) -> GateResult:
    """Any one sensor dead keeps the false-alarm rate within k× the full-sensor rate."""
    full = rates.get("full")
    by_sensor: dict[str, float] = rates.get("by_sensor") or {}
    if full is None or not by_sensor:
        return GateResult(
            name="dropout", passed=True, detail="no healthy holdout rows to test"
        )
    allowed = policy.dropout_max_ratio * max(full, policy.dropout_rate_floor)
    worst = max(by_sensor, key=lambda s: by_sensor[s])
    return GateResult(
        name="dropout",
        passed=by_sensor[worst] <= allowed,
        detail=(
            f"false alarms with {worst} missing {by_sensor[worst]:.2%} <= "
            f"{policy.dropout_max_ratio:g}x max(all sensors {full:.2%}, "
            f"{policy.dropout_rate_floor:.0%})"
        ),
    )


def event_gates(overall: dict[str, Any], policy: GatePolicy) -> list[GateResult]:
    """The optional gates on event metrics (only those the policy sets)."""
    gates = []
    if policy.min_event_recall is not None:
        value = overall.get("event_recall")
        gates.append(
            GateResult(
                name="min_event_recall",
                passed=value is not None and value >= policy.min_event_recall,
                detail=f"event_recall {_shown(value)} >= {policy.min_event_recall}",
            )
        )
    if policy.max_false_alarms_per_asset_month is not None:
        value = overall.get("false_alarms_per_asset_month")
        ceiling = policy.max_false_alarms_per_asset_month
        gates.append(
            GateResult(
                name="max_false_alarms_per_asset_month",
                passed=value is not None and value <= ceiling,
                detail=f"false_alarms_per_asset_month {_shown(value)} <= {ceiling}",
            )
        )
    return gates


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def champion_gates(
    challenger: dict[str, Any],
    champion: dict[str, Any] | None,
    policy: GatePolicy,
    champion_ref: str,
) -> list[GateResult]:
    """Challenger vs champion on the primary metric, overall and on every slice."""
    metric = policy.primary_metric
    if champion is None:
        return [
            GateResult(
                name="vs_champion",
                passed=True,
                detail="no champion yet: absolute gates only",
            )
        ]
    gates = [
        _compare(
            "vs_champion/overall",
            challenger["overall"],
            champion["overall"],
            metric,
            policy,
            champion_ref,
        )
    ]
    for column, values in challenger["slices"].items():
        for value, metrics in values.items():
            theirs = champion["slices"].get(column, {}).get(value)
            if (
                theirs is None
                or metrics.get(metric) is None
                or theirs.get(metric) is None
            ):
                continue
            gates.append(
                _compare(
                    f"vs_champion/{column}={value}",
                    metrics,
                    theirs,
                    metric,
                    policy,
                    champion_ref,
                )
            )
    return gates


def anomaly_gates(report: dict[str, Any], policy: GatePolicy) -> list[GateResult]:
    """An anomaly model has no labels: gate its alarm rate and its stability."""
    overall = report["overall"]
    target = overall["target_alarm_rate"]
    rate = overall["alarm_rate"]
    ceiling = policy.max_alarm_rate_ratio * target
    return [
        GateResult(
            name="alarm_rate",
            passed=rate <= ceiling,
            detail=(
                f"holdout alarm rate {rate:.2%} <= {policy.max_alarm_rate_ratio:g}x "
                f"target {target:.2%}"
            ),
        ),
        GateResult(
            name="stability",
            passed=overall["stability"] >= policy.min_stability,
            detail=(
                f"Spearman of holdout scores vs another seed "
                f"{overall['stability']:.3f} >= {policy.min_stability}"
            ),
        ),
        GateResult(
            name="vs_champion",
            passed=True,
            detail="unlabeled data: no labelled metric to compare with a champion",
        ),
    ]


def parity_gate(max_abs_diff: float, policy: GatePolicy) -> GateResult:
    """ONNX export must score like the trained model."""
    return GateResult(
        name="onnx_parity",
        passed=max_abs_diff <= policy.parity_tolerance,
        detail=f"max |p_onnx - p_xgb| = {max_abs_diff:.2e} <= {policy.parity_tolerance:.0e}",
    )


def _compare(
    name: str,
    ours: dict[str, Any],
    theirs: dict[str, Any],
    metric: str,
    policy: GatePolicy,
    ref: str,
) -> GateResult:
    mine, other = ours.get(metric), theirs.get(metric)
    if mine is None or other is None:
        return GateResult(name=name, passed=False, detail=f"{metric} not computable")
    passed = mine >= other - policy.max_regression
    return GateResult(
        name=name,
        passed=passed,
        detail=f"{metric} {mine:.4f} vs champion {ref} {other:.4f} (max drop {policy.max_regression})",
    )


def all_passed(gates: list[GateResult]) -> bool:
    """True when every gate passed."""
    return all(g.passed for g in gates)
