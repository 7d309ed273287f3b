import hashlib

import numpy as np
import pandas as pd
import pytest

from edgeloop.demo.simulator import config as cfg
from edgeloop.demo.simulator import generate


def digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(
        pd.util.hash_pandas_object(frame, index=False).values.tobytes()
    ).hexdigest()


SMALL = cfg.SimulationConfig(sites=2, pumps_per_site=3, days=12, seed=4)


def test_same_seed_same_data_other_seed_other_data():
    a, b = generate.simulate(SMALL), generate.simulate(SMALL)
    assert digest(a.readings) == digest(b.readings)
    assert a.maintenance.equals(b.maintenance)
    c = generate.simulate(SMALL.model_copy(update={"seed": 5}))
    assert digest(a.readings) != digest(c.readings)


def test_adding_a_site_leaves_existing_pumps_unchanged():
    small = generate.simulate(SMALL).readings
    big = generate.simulate(SMALL.model_copy(update={"sites": 3})).readings
    pump = small["pump_id"].iloc[0]
    left = small[small["pump_id"] == pump].reset_index(drop=True)
    right = big[big["pump_id"] == pump].reset_index(drop=True)
    pd.testing.assert_frame_equal(left, right)


def test_shape_types_and_sensors():
    data = generate.simulate(SMALL)
    r = data.readings
    assert list(r.columns[:5]) == [
        "timestamp",
        "site_id",
        "pump_id",
        "pump_type",
        "regime",
    ]
    assert set(cfg.SENSORS) <= set(r.columns)
    assert r["pump_id"].nunique() == 6 and r["site_id"].nunique() == 2
    assert r["pump_type"].nunique() >= 3 - 1
    assert set(r["regime"].unique()) <= set(cfg.REGIMES)
    for sensor, (_, low, high) in cfg.SENSOR_RANGES.items():
        values = r[sensor].dropna()
        assert values.between(low, high).mean() > 0.99, sensor


def test_failures_have_modes_repairs_and_downtime_without_readings():
    data = generate.simulate(
        cfg.SimulationConfig(sites=2, pumps_per_site=4, days=40, seed=1)
    )
    log = data.maintenance
    assert set(log["failure_mode"]) <= set(cfg.FAILURE_MODES) and len(log) > 3
    assert (log["repaired_at"] > log["failed_at"]).all()
    row = log.iloc[0]
    pump = data.readings[data.readings["pump_id"] == row["pump_id"]]
    during = pump[
        (pump["timestamp"] >= row["failed_at"])
        & (pump["timestamp"] < row["repaired_at"])
    ]
    assert during.empty


def test_degradation_raises_vibration_before_bearing_failures():
    data = generate.simulate(
        cfg.SimulationConfig(sites=3, pumps_per_site=4, days=60, seed=2)
    )
    bearing = data.maintenance[data.maintenance["failure_mode"] == "bearing_wear"].iloc[
        0
    ]
    pump = data.readings[data.readings["pump_id"] == bearing["pump_id"]].set_index(
        "timestamp"
    )
    before = pump.loc[
        bearing["failed_at"] - pd.Timedelta(hours=6) : bearing["failed_at"],
        "vibration_rms",
    ].mean()
    healthy = pump["vibration_rms"].median()
    assert before > healthy + 2.0


def test_ambient_shift_raises_ambient_at_the_chosen_site_only():
    shifted = cfg.SimulationConfig(
        sites=2,
        pumps_per_site=1,
        days=20,
        seed=3,
        perturbations=(cfg.Perturbation(kind="ambient_shift", sites=("offshore-01",)),),
    )
    base = generate.simulate(shifted.model_copy(update={"perturbations": ()})).readings
    new = generate.simulate(shifted).readings
    late = base["timestamp"] > base["timestamp"].quantile(0.8)
    delta = (
        (new.loc[late, "ambient_temp"] - base.loc[late, "ambient_temp"])
        .groupby(base.loc[late, "site_id"])
        .mean()
    )
    assert delta["offshore-01"] == pytest.approx(12.0, abs=0.5)
    assert delta["desert-02"] == pytest.approx(0.0, abs=1e-9)


def test_new_pump_type_appears_after_start():
    config = cfg.SimulationConfig(
        sites=2,
        pumps_per_site=2,
        days=10,
        seed=3,
        perturbations=(cfg.Perturbation(kind="new_pump_type", start_fraction=0.5),),
    )
    r = generate.simulate(config).readings
    new = r[r["pump_type"] == cfg.NEW_PUMP_TYPE.name]
    assert not new.empty and set(new["site_id"]) == {"desert-02"}
    assert new["timestamp"].min() >= r["timestamp"].quantile(0.49)


def test_sensor_faults_inject_stuck_values_spikes_and_nan_bursts():
    config = cfg.SimulationConfig(
        sites=2,
        pumps_per_site=2,
        days=10,
        seed=3,
        perturbations=(cfg.Perturbation(kind="sensor_faults", start_fraction=0.3),),
    )
    r = generate.simulate(config).readings
    pump = r[r["pump_id"] == "desert-02-p01"]
    assert (pump["vibration_rms"] > 50).sum() >= 10
    assert pump["flow_rate"].isna().sum() >= 36
    runs = pump["bearing_temp"].ne(pump["bearing_temp"].shift()).cumsum()
    assert pump.groupby(runs)["bearing_temp"].size().max() >= 100
    clean = r[r["pump_id"] != "desert-02-p01"]
    assert clean["flow_rate"].notna().all()


def test_regime_change_shifts_to_high_load():
    config = cfg.SimulationConfig(
        sites=1,
        pumps_per_site=3,
        days=40,
        seed=3,
        perturbations=(cfg.Perturbation(kind="regime_change", start_fraction=0.5),),
    )
    r = generate.simulate(config).readings
    late = r["timestamp"] > r["timestamp"].quantile(0.5)
    assert (r.loc[late, "regime"] == "high").mean() > (
        r.loc[~late, "regime"] == "high"
    ).mean() + 0.2


def test_written_files_validate_against_written_schema(tmp_path):
    from edgeloop_components import validation

    generate.write_fleet(
        generate.simulate(
            cfg.SimulationConfig(sites=2, pumps_per_site=3, days=30, seed=1)
        ),
        tmp_path,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fleet.json",
        "maintenance_log.csv",
        "readings.parquet",
        "schema.yaml",
    ]
    report, schema = validation.check(tmp_path)
    assert schema.entity_column == "pump_id" and report.rows > 0


def test_config_rejects_nonsense():
    with pytest.raises(ValueError):
        cfg.SimulationConfig(sites=0)
    with pytest.raises(ValueError, match="once"):
        cfg.SimulationConfig(
            perturbations=(
                cfg.Perturbation(kind="ambient_shift"),
                cfg.Perturbation(kind="ambient_shift"),
            )
        )
    assert np.isfinite(cfg.SimulationConfig().steps())
