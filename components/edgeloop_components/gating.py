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


def absolute_gates(report: dict[str, Any], policy: GatePolicy) -> list[GateResult]:
    """Floors on the overall metrics."""
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
    return gates


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
