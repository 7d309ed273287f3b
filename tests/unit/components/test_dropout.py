"""Sensor dropouts: augmentation in training, the dropout gate on the holdout."""

from __future__ import annotations

import numpy as np
import yaml

from edgeloop_agent.contracts import FeatureSpec
from edgeloop_components import dropout, gating

from ...conftest import train_through_steps

SPEC = FeatureSpec(
    sensors=("temp", "vib", "flow"), windows=(12,), aggregates=("last", "mean")
)


def test_augmented_rows_drop_exactly_one_sensor_and_keep_labels():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1000, 6)).astype(np.float32)
    y = (rng.random(1000) < 0.1).astype(np.int8)
    x2, y2 = dropout.augment(x, y, SPEC, 0.5, seed=3)
    assert x2.shape == (1500, 6) and np.array_equal(x2[:1000], x)
    added = np.isnan(x2[1000:])
    columns = dropout.sensor_inputs(SPEC)
    for row in added:
        hit = {s for s, cols in columns.items() if row[cols].any()}
        assert len(hit) == 1  # one sensor per copy
    whole = added.sum(axis=1) == 2  # a dead sensor: all its inputs
    single = added.sum(axis=1) == 1  # one missing reading: only its "last"
    assert whole.any() and single.any() and (whole | single).all()
    assert all(added[i, [0, 2, 4]].any() for i in np.flatnonzero(single))
    assert y2[1000:].mean() > 0  # labels travel with the copied rows


def test_sensors_that_drop_out_in_the_data_are_drawn_more_often():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4000, 6)).astype(np.float32)
    x[rng.random(4000) < 0.5, 2] = np.nan  # vib's last reading is often missing
    rates = dropout.observed_rates(x, SPEC)
    assert rates["vib"] > 0.4 and rates["temp"] == 0.0
    x2, _ = dropout.augment(x, np.zeros(4000, dtype=np.int8), SPEC, 1.0, seed=0)
    copies = np.isnan(x2[4000:])
    assert copies[:, 3].sum() > copies[:, 1].sum()  # vib's mean vs temp's mean


def test_the_dropout_gate_compares_with_the_full_sensor_rate():
    policy = gating.GatePolicy()
    ok = gating.dropout_gate(
        {"full": 0.02, "by_sensor": {"a": 0.03, "b": 0.04}}, policy
    )
    bad = gating.dropout_gate({"full": 0.0, "by_sensor": {"a": 0.5, "b": 0.0}}, policy)
    assert ok.passed and "b missing 4.00%" in ok.detail
    assert not bad.passed and "a missing 50.00%" in bad.detail


def test_a_model_trained_with_dropouts_meets_the_gate_on_the_simulator_fleet(
    fleet_dir, tmp_path
):
    """Before: one null sensor made every healthy holdout row alarm."""
    runs = {
        share: train_through_steps(
            fleet_dir,
            tmp_path / f"share-{share}",
            f"sqlite:///{tmp_path}/m{share}.db",
            dropout_share=share,
            n_estimators=200,  # the pipeline's default: more trees, more to lose
        )
        for share in (0.0, 0.2)
    }
    gates = {
        share: {g["name"]: g for g in run.gate["gates"]} for share, run in runs.items()
    }
    assert gates[0.2]["dropout"]["passed"], gates[0.2]["dropout"]["detail"]
    # without augmentation a dead vibration sensor made ~19 % of healthy rows alarm
    assert not gates[0.0]["dropout"]["passed"], gates[0.0]["dropout"]["detail"]
    schema_sensors = {
        f["name"]
        for f in yaml.safe_load((fleet_dir / "schema.yaml").read_text())["features"]
    }
    assert set(runs[0.2].report["dropout"]["by_sensor"]) == schema_sensors
