"""Data shapes the simulator does not produce: no entity column, no time column.

A plant's export is often one machine's sensor table with an anomaly column
and nothing else; before, the schema required both columns and the user had
to invent them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from edgeloop_components import tasks
from edgeloop_components.dataset import IMPLICIT_ENTITY, IMPLICIT_TIME
from edgeloop_components.errors import DataValidationError

from ...conftest import train_through_steps


def one_pump(fleet_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The most-failing pump's readings in time order, its failures, the schema."""
    schema = yaml.safe_load((fleet_dir / "schema.yaml").read_text())
    log = pd.read_csv(fleet_dir / "maintenance_log.csv")
    pump = str(log["pump_id"].value_counts().index[0])
    readings = pd.read_parquet(fleet_dir / "readings.parquet")
    mine = readings[readings["pump_id"] == pump].sort_values("timestamp")
    return mine.reset_index(drop=True), log[log["pump_id"] == pump], schema


def test_sensor_columns_and_a_label_only_train_end_to_end(fleet_dir, tmp_path):
    """No entity, no time, a gzipped semicolon CSV: one machine in row order."""
    readings, _, fleet_schema = one_pump(fleet_dir)
    labelled = tmp_path / "labelled"
    tasks.ingest_validate(str(fleet_dir), "", labelled)  # the fleet's own labels
    labels = pd.read_parquet(labelled / "readings.parquet")
    keyed = readings.merge(
        labels[["pump_id", "timestamp", "__label__"]], on=["pump_id", "timestamp"]
    )
    sensors = [f["name"] for f in fleet_schema["features"]]
    data = tmp_path / "plant"
    data.mkdir()
    keyed[sensors].assign(anomaly=keyed["__label__"]).to_csv(
        data / "export.csv.gz", sep=";", index=False
    )
    (data / "schema.yaml").write_text(
        yaml.safe_dump(
            {
                "readings": "export.csv.gz",
                "row_interval_seconds": 600,
                "features": fleet_schema["features"],
                "label": {"kind": "column", "column": "anomaly"},
            }
        )
    )
    run = train_through_steps(data, tmp_path / "work", f"sqlite:///{tmp_path}/m.db")
    assert run.ingest["entities"] == 1 and run.ingest["rows"] == len(keyed)
    manifest = json.loads((run.bundle_dir / "bundle.json").read_text())
    assert manifest["entity_column"] == IMPLICIT_ENTITY
    assert manifest["time_column"] == IMPLICIT_TIME
    overall = run.report["overall"]
    assert overall["rows"] > 0 and overall["false_alarms_per_asset_month"] is not None
    holdout = pd.read_parquet(run.work / "split" / "holdout.parquet")
    train = pd.read_parquet(run.work / "split" / "train.parquet")
    assert train[IMPLICIT_TIME].max() < holdout[IMPLICIT_TIME].min()
    # 10-minute rows, as row_interval_seconds says
    assert holdout[IMPLICIT_TIME].diff().dropna().eq(pd.Timedelta(minutes=10)).all()


def test_one_machine_with_a_failure_log_needs_no_entity_anywhere(fleet_dir, tmp_path):
    readings, log, fleet_schema = one_pump(fleet_dir)
    data = tmp_path / "one"
    data.mkdir()
    sensors = [f["name"] for f in fleet_schema["features"]]
    readings[["timestamp", *sensors]].to_parquet(data / "readings.parquet")
    log[["failed_at"]].to_csv(data / "failures.csv", index=False)
    (data / "schema.yaml").write_text(
        yaml.safe_dump(
            {
                "time_column": "timestamp",
                "features": fleet_schema["features"],
                "label": {
                    "kind": "failure_log",
                    "path": "failures.csv",
                    "time_column": "failed_at",
                    "horizon_hours": 48,
                },
            }
        )
    )
    out = tasks.ingest_validate(str(data), "", tmp_path / "validated")
    assert out["entities"] == 1 and 0 < out["positive_share"] < 1


def test_a_failure_log_without_times_in_the_readings_is_one_clear_error(
    fleet_dir, tmp_path
):
    readings, log, fleet_schema = one_pump(fleet_dir)
    data = tmp_path / "notime"
    data.mkdir()
    sensors = [f["name"] for f in fleet_schema["features"]]
    readings[sensors].to_parquet(data / "readings.parquet")
    log.to_csv(data / "failures.csv", index=False)
    (data / "schema.yaml").write_text(
        yaml.safe_dump(
            {
                "features": fleet_schema["features"],
                "label": {
                    "kind": "failure_log",
                    "path": "failures.csv",
                    "entity_column": "pump_id",
                    "time_column": "failed_at",
                    "horizon_hours": 48,
                },
            }
        )
    )
    with pytest.raises(DataValidationError, match="a failure log needs times"):
        tasks.ingest_validate(str(data), "", tmp_path / "validated")


def test_a_fleet_log_without_its_entity_column_is_refused(fleet_dir, tmp_path):
    schema = yaml.safe_load((fleet_dir / "schema.yaml").read_text())
    del schema["label"]["entity_column"]
    (tmp_path / "schema.yaml").write_text(yaml.safe_dump(schema))
    with pytest.raises(DataValidationError, match="label.entity_column is required"):
        tasks.ingest_validate(
            str(fleet_dir), str(tmp_path / "schema.yaml"), tmp_path / "v"
        )
