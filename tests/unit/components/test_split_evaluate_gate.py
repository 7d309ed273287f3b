import numpy as np
import pandas as pd
import pytest

from edgeloop_agent.contracts import GateResult
from edgeloop_components import evaluation, gating, split
from edgeloop_components.errors import TrainingError
from edgeloop_components.validation import LABEL_COLUMN


def table(n_entities=10, n_times=50, fail_every=7):
    rows = []
    for e in range(n_entities):
        for t in range(n_times):
            rows.append(
                {
                    "pump": f"p{e}",
                    "time": pd.Timestamp("2026-01-01") + pd.Timedelta(hours=t),
                    LABEL_COLUMN: int((t + e) % fail_every == 0),
                }
            )
    return pd.DataFrame(rows)


def test_split_shares_no_entity_and_no_period():
    out = split.split(table(), "pump", "time", 0.3, 0.4, seed=1)
    train = out[out[split.SPLIT_COLUMN] == "train"]
    hold = out[out[split.SPLIT_COLUMN] == "holdout"]
    assert set(train["pump"]).isdisjoint(hold["pump"])
    assert train["time"].max() < hold["time"].min()
    assert len(train) and len(hold)


def test_split_is_deterministic_per_seed():
    a = split.split(table(), "pump", "time", 0.3, 0.4, seed=1)[split.SPLIT_COLUMN]
    b = split.split(table(), "pump", "time", 0.3, 0.4, seed=1)[split.SPLIT_COLUMN]
    assert a.equals(b)


def test_stratified_entities_put_failing_entities_on_both_sides():
    held = split.holdout_entities(
        [f"p{i}" for i in range(10)], 0.3, 0, positive={"p1", "p2"}
    )
    assert len(held) == 3
    assert len(held & {"p1", "p2"}) == 1


def test_one_entity_is_split_by_time_with_a_purge_gap():
    """Before: one machine's data passed validation, then training failed with
    'need at least 2 entities to split by entity'."""
    out = split.split(
        table(n_entities=1, n_times=100),
        "pump",
        "time",
        0.3,
        0.4,
        purge=pd.Timedelta(hours=5),
    )
    train = out[out[split.SPLIT_COLUMN] == "train"]["time"]
    hold = out[out[split.SPLIT_COLUMN] == "holdout"]["time"]
    unused = out[out[split.SPLIT_COLUMN] == "unused"]["time"]
    assert hold.min() - train.max() == pd.Timedelta(hours=6)  # 5 h purged, exclusive
    assert len(unused) == 5 and unused.min() > train.max() and unused.max() < hold.min()
    assert len(train) == 55 and len(hold) == 40


def test_split_refuses_single_class_sides_and_bad_fractions():
    with pytest.raises(TrainingError, match="at least 2 entities"):
        split.holdout_entities(["p0"], 0.3, 0)
    with pytest.raises(TrainingError, match="label class"):
        split.split(table(fail_every=10_000), "pump", "time", 0.3, 0.4)
    with pytest.raises(TrainingError, match="strictly between 0 and 1"):
        split.split(table(), "pump", "time", 1.0, 0.4)


def test_metrics_on_a_perfect_and_a_useless_score():
    y = np.array([0, 0, 1, 1, 0, 1])
    perfect = evaluation.score_metrics(y, y.astype(float), 0.8)
    assert (
        perfect["roc_auc"] == 1.0
        and perfect["pr_auc"] == 1.0
        and perfect["recall_at_precision"] == 1.0
    )
    flat = evaluation.score_metrics(y, np.full(6, 0.5), 0.8)
    assert flat["roc_auc"] == 0.5 and flat["recall_at_precision"] == 0.0


def test_slices_with_one_class_have_no_auc():
    y = np.array([0, 1, 0, 0])
    report = evaluation.evaluate(
        y, np.array([0.1, 0.9, 0.2, 0.3]), pd.DataFrame({"site": ["a", "a", "b", "b"]})
    )
    assert report["slices"]["site"]["a"]["roc_auc"] == 1.0
    assert report["slices"]["site"]["b"]["roc_auc"] is None


def report(overall, slices=None):
    return {
        "overall": {"roc_auc": 0.9, **overall},
        "slices": slices or {},
        "target_precision": 0.8,
    }


def test_first_model_passes_on_absolute_floors_only():
    policy = gating.GatePolicy()
    gates = gating.absolute_gates(
        report({"pr_auc": 0.5}), policy
    ) + gating.champion_gates(report({"pr_auc": 0.5}), None, policy, "")
    assert gating.all_passed(gates)
    assert gating.absolute_gates(report({"pr_auc": 0.05}), policy)[1] == GateResult(
        name="min_pr_auc", passed=False, detail="pr_auc 0.0500 >= 0.2"
    )


def test_regression_beyond_margin_fails_within_margin_passes():
    policy = gating.GatePolicy(max_regression=0.02)
    champ = report({"pr_auc": 0.80})
    assert gating.all_passed(
        gating.champion_gates(report({"pr_auc": 0.79}), champ, policy, "m:1")
    )
    failed = gating.champion_gates(report({"pr_auc": 0.70}), champ, policy, "m:1")
    assert not gating.all_passed(failed)
    assert "0.7000 vs champion m:1 0.8000" in failed[0].detail


def test_a_regressing_slice_fails_even_when_overall_improves():
    policy = gating.GatePolicy()
    champ = report(
        {"pr_auc": 0.8}, {"site": {"a": {"pr_auc": 0.9}, "b": {"pr_auc": 0.7}}}
    )
    ours = report(
        {"pr_auc": 0.85}, {"site": {"a": {"pr_auc": 0.6}, "b": {"pr_auc": 0.95}}}
    )
    gates = gating.champion_gates(ours, champ, policy, "m:1")
    failed = [g.name for g in gates if not g.passed]
    assert failed == ["vs_champion/site=a"]


def test_parity_gate():
    policy = gating.GatePolicy(parity_tolerance=1e-5)
    assert gating.parity_gate(2e-7, policy).passed
    assert not gating.parity_gate(1e-3, policy).passed


def test_gate_policy_rejects_unknown_metric():
    with pytest.raises(ValueError, match="primary_metric"):
        gating.GatePolicy(primary_metric="accuracy")
