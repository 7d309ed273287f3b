"""Holdout metrics, overall and per slice.

ROC-AUC, PR-AUC (average precision) and recall at a fixed precision: the
question a maintenance planner asks is "if I trust 80 % of alarms, how many
failures do I catch?". A slice with a single class has no AUC; its metrics are
``None`` and it is skipped by the gate rather than invented.
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

METRICS = ("roc_auc", "pr_auc", "recall_at_precision")


def score_metrics(
    y: np.ndarray, scores: np.ndarray, target_precision: float
) -> dict[str, Any]:
    """Metrics for one set of rows; AUCs are ``None`` when only one class is present."""
    y = np.asarray(y).astype(int)
    out: dict[str, Any] = {"rows": int(len(y)), "positives": int(y.sum())}
    if len(np.unique(y)) < 2:
        out.update(dict.fromkeys(METRICS))
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
    target_precision: float = 0.8,
) -> dict[str, Any]:
    """Overall metrics plus ``slices[column][value]`` for each slice column."""
    report: dict[str, Any] = {
        "target_precision": target_precision,
        "overall": score_metrics(y, scores, target_precision),
        "slices": {},
    }
    for column in slices.columns:
        values = slices[column].astype(str).to_numpy()
        report["slices"][column] = {
            value: score_metrics(
                y[values == value], scores[values == value], target_precision
            )
            for value in sorted(set(values))
        }
    return report
