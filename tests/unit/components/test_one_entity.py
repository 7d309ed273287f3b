"""One machine's history trains end to end (the steps the pipeline runs)."""

from __future__ import annotations

import shutil

import pandas as pd

from ...conftest import train_through_steps


def test_one_pump_trains_validates_and_bundles(fleet_dir, tmp_path):
    data = tmp_path / "one-pump"
    shutil.copytree(fleet_dir, data)
    log = pd.read_csv(data / "maintenance_log.csv")
    pump = str(log["pump_id"].value_counts().index[0])  # the pump failing most
    readings = pd.read_parquet(data / "readings.parquet")
    readings[readings["pump_id"] == pump].to_parquet(
        data / "readings.parquet", index=False
    )
    run = train_through_steps(data, tmp_path / "work", f"sqlite:///{tmp_path}/m.db")
    assert run.ingest["entities"] == 1
    assert (run.bundle_dir / "bundle.json").exists()
    assert run.report["overall"]["rows"] > 0
