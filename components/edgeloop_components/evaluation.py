"""Holdout metrics, overall and per slice.

ROC-AUC, PR-AUC (average precision) and recall at a fixed precision: the
question a maintenance planner asks is "if I trust 80 % of alarms, how many
failures do I catch?". A slice with a single class has no AUC; its metrics are
``None`` and it is skipped by the gate rather than invented.

Overall, the alarm threshold comes from the :mod:`thresholds` policy and the
event-level metrics of :mod:`events` (failures alarmed in time, lead time,
false alarms per asset-month) are reported beside the row metrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
)

from edgeloop_components.events import EVENT_METRICS, Timeline
from edgeloop_components.thresholds import ThresholdPolicy, choose

METRICS = ("roc_auc", "pr_auc", "recall_at_precision", *EVENT_METRICS)
"""Metrics recorded in the bundle (``None`` where not computable)."""
ROW_METRICS = ("roc_auc", "pr_auc", "recall_at_precision")


def score_metrics(
    y: np.ndarray, scores: np.ndarray, target_precision: float
) -> dict[str, Any]:
    """Metrics for one set of rows; AUCs are ``None`` when only one class is present."""
    y = np.asarray(y).astype(int)
    out: dict[str, Any] = {"rows": int(len(y)), "positives": int(y.sum())}
    if len(np.unique(y)) < 2:
        out.update(dict.fromkeys(ROW_METRICS))
        out["threshold"] = None
        return out
    precision, recall, thresholds = precision_recall_curve(y, scores)
    ok = precision[:-1] >= target_precision
    if ok.any():
        best = int(np.argmax(np.where(ok, recall[:-1], -1.0)))
        out["recall_at_precision"] = float(recall[best])
        out["threshold"] = float(thresholds[best])
    else:
        out["recall_at_precision"] = 0.0
        # No threshold reaches the target: fall back to the best-F1 threshold.
        f1 = (
            2
            * precision[:-1]
            * recall[:-1]
            / np.maximum(precision[:-1] + recall[:-1], 1e-12)
        )
        out["threshold"] = float(thresholds[int(np.argmax(f1))])
    out["roc_auc"] = float(roc_auc_score(y, scores))
    out["pr_auc"] = float(average_precision_score(y, scores))
    return out


def evaluate(
    y: np.ndarray,
    scores: np.ndarray,
    slices: pd.DataFrame,
    policy: ThresholdPolicy | None = None,
    entity: np.ndarray | None = None,
    times: np.ndarray | None = None,
) -> dict[str, Any]:
    """Overall metrics plus ``slices[column][value]`` for each slice column.

    With ``entity`` and ``times`` the overall threshold honours the policy's
    false-alarm budget and the event metrics are computed; slices keep the row
    metrics (their threshold is only what the precision target alone would pick).
    """
    policy = policy or ThresholdPolicy()
    target = policy.target_precision
    y = np.asarray(y).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    report: dict[str, Any] = {
        "target_precision": target,
        "threshold_policy": policy.model_dump(),
        "overall": overall_metrics(y, scores, policy, entity, times),
        "slices": {},
    }
    for column in slices.columns:
        values = slices[column].astype(str).to_numpy()
        report["slices"][column] = {
            value: score_metrics(y[values == value], scores[values == value], target)
            for value in sorted(set(values))
        }
    return report


def overall_metrics(
    y: np.ndarray,
    scores: np.ndarray,
    policy: ThresholdPolicy,
    entity: np.ndarray | None,
    times: np.ndarray | None,
) -> dict[str, Any]:
    """Row metrics, the policy's threshold and, given keys, the event metrics."""
    out = score_metrics(y, scores, policy.target_precision)
    out.update(dict.fromkeys(EVENT_METRICS))
    if out["threshold"] is None:  # one class: nothing to choose
        return out
    timeline = None
    if entity is not None and times is not None:
        timeline, order = Timeline.of(y, entity, times)
        y, scores = y[order], scores[order]
    choice = choose(y, scores, policy, timeline)
    out["threshold"] = choice.threshold
    out["threshold_policy_met"] = choice.policy_met
    out["safe_interval"] = list(choice.safe_interval) if choice.safe_interval else None
    out["precision_at_threshold"] = choice.precision
    out["recall_at_precision"] = choice.recall if choice.policy_met else 0.0
    if timeline is not None:
        events = timeline.metrics(scores >= choice.threshold, policy.min_lead_hours)
        out.update(events)
    return out
