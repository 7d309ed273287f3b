"""The alarm threshold, chosen by an explicit policy recorded in the bundle.

Policy: maximise recall subject to precision >= ``target_precision`` *and*
false alarms <= ``max_false_alarms_per_asset_month`` (alarm episodes per asset
per 30 days, the unit maintenance planners budget in). Every threshold that
reaches that best recall within the policy forms one *safe interval*
``(lo, hi]`` of scores; the threshold is its middle, not its edge.

Why the middle: the edge of the interval is a score the holdout happened to
produce. Taking the lowest threshold that met the precision target (what the
pipeline did before) put it next to the highest-scoring normal rows: on a
perfectly separable dataset whose safe interval was (0.029, 0.996] it chose
0.00016 and raised 100 false alarms in 507 rows. The middle is as far from
missing a failure as from breaking the policy.

When no threshold meets the policy, the best-F1 threshold is used and the
choice says ``policy_met: false`` (the ``threshold_policy`` gate can refuse it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgeloop_components.events import Timeline


class ThresholdPolicy(BaseModel):
    """How the alarm threshold is chosen (pipeline parameters)."""

    model_config = ConfigDict(extra="forbid")

    target_precision: float = Field(0.8, gt=0, le=1)
    max_false_alarms_per_asset_month: float | None = Field(4.0, ge=0)
    """Alarm episodes on healthy assets per asset per 30 days; ``None``: no budget."""
    min_lead_hours: float = Field(0.0, ge=0)
    """Lead time a failure must be alarmed by to count in ``event_recall``."""
    target_alarm_rate: float = Field(0.005, gt=0, lt=1)
    """Anomaly models (no labels): share of training rows that alarm."""


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold and why."""

    threshold: float
    policy_met: bool
    safe_interval: tuple[float, float] | None
    recall: float
    precision: float


def choose(
    y: np.ndarray,
    scores: np.ndarray,
    policy: ThresholdPolicy,
    timeline: Timeline | None = None,
) -> ThresholdChoice:
    """Pick the threshold for ``scores`` (alarm when ``score >= threshold``).

    ``timeline`` (rows in its sorted order) enables the false-alarm budget; without
    one (no time to count months in) only the precision target applies.
    """
    y = np.asarray(y).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    candidates = np.unique(scores)  # ascending; alarms at k: scores >= candidates[k]
    pos = np.sort(scores[y == 1])
    neg = np.sort(scores[y == 0])
    tp = len(pos) - np.searchsorted(pos, candidates, side="left")
    fp = len(neg) - np.searchsorted(neg, candidates, side="left")
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / max(len(pos), 1)
    feasible = np.flatnonzero((precision >= policy.target_precision) & (tp > 0))
    budget = policy.max_false_alarms_per_asset_month
    if budget is not None and timeline is not None and timeline.asset_months > 0:
        feasible = _within_budget(feasible, candidates, scores, timeline, budget)
    if not len(feasible):
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        k = int(np.argmax(f1))
        return ThresholdChoice(
            float(candidates[k]), False, None, float(recall[k]), float(precision[k])
        )
    first = int(feasible[0])
    top = first + int(np.flatnonzero(tp[first:] == tp[first])[-1])
    low = float(candidates[first - 1]) if first > 0 else 0.0
    high = float(candidates[top])
    middle = (low + high) / 2 if low < high else high
    threshold = middle
    if (
        budget is not None
        and timeline is not None
        and (timeline.false_alarm_rate(scores >= middle) or 0.0) > budget
    ):
        threshold = float(candidates[first])  # episodes split: stay at the edge
    alarms = scores >= threshold
    hits = int((alarms & (y == 1)).sum())
    return ThresholdChoice(
        threshold,
        True,
        (low, high),
        float(hits / max(len(pos), 1)),
        float(hits / max(int(alarms.sum()), 1)),
    )


def _within_budget(
    feasible: np.ndarray,
    candidates: np.ndarray,
    scores: np.ndarray,
    timeline: Timeline,
    budget: float,
) -> np.ndarray:
    """The feasible candidates from the lowest one within the false-alarm budget on.

    False-alarm episodes shrink as the threshold rises (almost always: raising it
    can split one episode in two), so a binary search finds the lowest one in
    ``log2(n)`` counts instead of one per candidate.
    """
    lo, hi = 0, len(feasible)
    while lo < hi:
        mid = (lo + hi) // 2
        rate = timeline.false_alarm_rate(scores >= candidates[feasible[mid]]) or 0.0
        if rate <= budget:
            hi = mid
        else:
            lo = mid + 1
    return feasible[lo:]
