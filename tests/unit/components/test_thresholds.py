"""The alarm threshold policy and the event-level metrics beside the row ones."""

from __future__ import annotations

import numpy as np
import pandas as pd

from edgeloop_components import evaluation
from edgeloop_components.events import Timeline
from edgeloop_components.thresholds import ThresholdPolicy, choose


def hourly(entity: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    times = pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n), unit="h")
    return np.full(n, entity), times.to_numpy()


def test_perfectly_separable_scores_give_zero_false_alarms_and_the_middle():
    """Before: the lowest threshold meeting precision 0.8 (0.00016 on a separable
    set): 100 false alarms in 507 holdout rows."""
    rng = np.random.default_rng(0)
    healthy = rng.uniform(0.0001, 0.029, 507)
    failing = rng.uniform(0.996, 1.0, 40)
    scores = np.concatenate([healthy, failing])
    y = np.concatenate([np.zeros(507), np.ones(40)])
    choice = choose(y, scores, ThresholdPolicy())
    assert choice.policy_met and choice.recall == 1.0 and choice.precision == 1.0
    assert choice.safe_interval is not None
    low, high = choice.safe_interval
    assert low < healthy.max() + 1e-12 and high == failing.min()
    assert abs(choice.threshold - (low + high) / 2) < 1e-12
    assert ((scores >= choice.threshold) & (y == 0)).sum() == 0


def test_the_false_alarm_budget_raises_the_threshold_above_the_precision_target():
    # one pump over 30 days: 5 healthy spikes of 0.6 (separate episodes), a failure
    # scored 0.7 then 0.9; precision alone (0.5) accepts the spikes, the budget not.
    n = 720
    entity, times = hourly("p1", n)
    y = np.zeros(n, dtype=int)
    scores = np.full(n, 0.05)
    scores[[50, 150, 250, 350, 450]] = 0.6
    y[700:710] = 1
    scores[700:705] = 0.7
    scores[705:710] = 0.9
    timeline, order = Timeline.of(y, entity, times)
    loose = choose(
        y[order],
        scores[order],
        ThresholdPolicy(target_precision=0.5, max_false_alarms_per_asset_month=None),
        timeline,
    )
    assert loose.threshold <= 0.6 and loose.recall == 1.0
    strict = choose(
        y[order],
        scores[order],
        ThresholdPolicy(target_precision=0.5, max_false_alarms_per_asset_month=2),
        timeline,
    )
    assert strict.policy_met and 0.6 < strict.threshold <= 0.7
    assert timeline.false_alarms(scores[order] >= strict.threshold) == 0


def test_event_metrics_count_failures_and_alarm_episodes_not_rows():
    n = 24 * 30
    entity, times = hourly("p1", n)
    y = np.zeros(n, dtype=int)
    y[100:124] = 1  # one failure event, ending at hour 123
    alarms = np.zeros(n, dtype=bool)
    alarms[118:124] = True  # first alarm 5 h before the event's end
    alarms[300:310] = True  # one false alarm episode of 10 rows
    alarms[400] = True  # and a second one
    timeline, order = Timeline.of(y, entity, times)
    early = timeline.metrics(alarms[order], min_lead_hours=4)
    assert early["events"] == 1 and early["event_recall"] == 1.0
    assert early["median_lead_hours"] == 5.0
    assert early["false_alarms"] == 2
    assert abs(early["false_alarms_per_asset_month"] - 2 / ((n - 1) / 720)) < 1e-9
    late = timeline.metrics(alarms[order], min_lead_hours=6)
    assert late["event_recall"] == 0.0 and late["median_lead_hours"] == 5.0


def test_episodes_do_not_run_across_entities():
    e1, t1 = hourly("a", 10)
    e2, t2 = hourly("b", 10)
    entity, times = np.concatenate([e1, e2]), np.concatenate([t1, t2])
    y = np.zeros(20, dtype=int)
    alarms = np.zeros(20, dtype=bool)
    alarms[9] = alarms[10] = True  # a's last row, b's first row: two episodes
    timeline, order = Timeline.of(y, entity, times)
    assert timeline.false_alarms(alarms[order]) == 2


def test_an_unreachable_policy_falls_back_to_best_f1_and_says_so():
    y = np.array([0, 1, 0, 1, 0, 1])
    scores = np.array([0.9, 0.1, 0.8, 0.2, 0.7, 0.3])  # anti-correlated
    choice = choose(y, scores, ThresholdPolicy(target_precision=0.9))
    assert not choice.policy_met and choice.safe_interval is None
    report = evaluation.evaluate(
        y, scores, pd.DataFrame(index=range(6)), ThresholdPolicy(target_precision=0.9)
    )
    assert report["overall"]["threshold_policy_met"] is False
    assert report["overall"]["recall_at_precision"] == 0.0


def test_evaluate_reports_event_metrics_and_the_policy():
    n = 24 * 10
    entity, times = hourly("p1", n)
    y = np.zeros(n, dtype=int)
    y[200:220] = 1
    scores = np.where(y == 1, 0.95, 0.02)
    report = evaluation.evaluate(
        y, scores, pd.DataFrame(index=range(n)), ThresholdPolicy(), entity, times
    )
    overall = report["overall"]
    assert report["threshold_policy"]["max_false_alarms_per_asset_month"] == 4.0
    assert overall["event_recall"] == 1.0 and overall["false_alarms"] == 0
    assert overall["median_lead_hours"] == 19.0
    assert 0.02 < overall["threshold"] < 0.95
