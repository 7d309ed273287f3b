"""The whole train-edge-model pipeline through kfp.local, as `edgeloop pipeline run` runs it."""

import json
import re
import shutil

import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from edgeloop.cli import app

pytestmark = [pytest.mark.kfp_local, pytest.mark.slow]
runner = CliRunner()


def test_pipeline_registers_promotes_then_refuses_a_failed_gate(
    fleet_dir, tmp_path, monkeypatch
):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("EDGELOOP_REGISTRY__TRACKING_URI", uri)

    first = runner.invoke(
        app,
        [
            "-o",
            "json",
            "pipeline",
            "run",
            "--data",
            str(fleet_dir),
            "--n-estimators",
            "40",
        ],
    )
    assert first.exit_code == 0, first.output
    v1 = json.loads(first.stdout)
    assert v1["version"] == 1 and v1["promoted"] is True
    # -o json: the result on stdout, no progress lines around it
    assert "register-model" not in first.stderr

    second = runner.invoke(
        app,
        [
            "-o",
            "json",
            "pipeline",
            "run",
            "--data",
            str(fleet_dir),
            "--n-estimators",
            "40",
            "--param",
            "min_roc_auc=0.9999",
        ],
    )
    assert second.exit_code == 0, second.output
    v2 = json.loads(second.stdout)
    assert (
        v2["version"] == 2 and v2["promoted"] is False and v2["previous_champion"] == 1
    )
    # the run ends with what decided it: the failed gate, its detail, the metrics
    failed = [g for g in v2["gate_results"] if not g["passed"]]
    assert [g["gate"] for g in failed] == ["min_roc_auc"] and "0.9999" in failed[0][
        "detail"
    ]
    assert v2["metrics"]["roc_auc"] < 0.9999 and 0 < v2["alarm_threshold"] < 1

    mlc = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert int(mlc.get_model_version_by_alias("pump-failure", "champion").version) == 1
    tags = mlc.get_model_version("pump-failure", "2").tags
    assert tags["edgeloop.gates"] == "failed"
    assert tags["edgeloop.parent_champion"] == "pump-failure:1"
    assert tags["edgeloop.pipeline_run_id"].startswith("train-edge-model-")

    lineage = json.loads(
        runner.invoke(app, ["-o", "json", "models", "lineage", "pump-failure:2"]).stdout
    )
    failed = [g for g in lineage["gates"] if not g["passed"]]
    assert [g["name"] for g in failed] == ["min_roc_auc"]


@pytest.mark.parametrize("terminal", [False, True])
def test_pipeline_stops_at_validation_with_the_rule_named(
    fleet_dir, tmp_path, monkeypatch, terminal
):
    monkeypatch.setenv(
        "EDGELOOP_REGISTRY__TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}"
    )
    if terminal:
        monkeypatch.setenv("FORCE_COLOR", "1")  # rich: stderr is a terminal
    data = tmp_path / "bad"
    shutil.copytree(fleet_dir, data)
    frame = pd.read_parquet(data / "readings.parquet")
    frame.loc[frame.index[: len(frame) // 10], "discharge_pressure"] = -50.0
    frame.to_parquet(data / "readings.parquet")
    result = runner.invoke(app, ["pipeline", "run", "--data", str(data)])
    assert result.exit_code == 1
    # (a terminal's cursor codes aside)
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.stderr)
    line = shown.strip().splitlines()[-1]
    assert line.startswith(
        "error: step 'validate-data' failed: DataValidationError: readings.parquet: "
        "column 'discharge_pressure': rule out_of_range: 10.0% of rows outside"
    )
    assert "Traceback" not in result.output
    # the step shows as it runs: a live bar on a terminal, a line per step elsewhere
    if terminal:
        assert "training" in shown and "0/10" in shown
        assert "[1/10] validate-data" not in shown
    else:
        assert "[1/10] validate-data …" in shown


def test_pipeline_run_rejects_bad_params(fleet_dir):
    result = runner.invoke(
        app, ["pipeline", "run", "--data", str(fleet_dir), "--param", "depth=3"]
    )
    assert (
        result.exit_code == 1 and "unknown pipeline parameter 'depth'" in result.stderr
    )
    result = runner.invoke(
        app,
        [
            "pipeline",
            "run",
            "--data",
            str(fleet_dir),
            "--max-depth",
            "3",
            "--param",
            "max_depth=4",
        ],
    )
    assert (
        result.exit_code == 1 and "either as an option or as --param" in result.stderr
    )


def test_param_types_are_checked_strictly():
    from edgeloop.core.errors import UsageError
    from edgeloop.train.pipeline_runs import parse_params

    assert parse_params(
        ["n_estimators=50", "min_roc_auc=1", "model_name=42", "windows=[6,12]"]
    ) == {
        "n_estimators": 50,
        "min_roc_auc": 1.0,
        "model_name": "42",
        "windows": [6, 12],
    }
    for bad, kind in (
        ("n_estimators=true", "int"),
        ("auto_promote=1", "bool"),
        ("min_roc_auc=true", "float"),
        ("windows=6", "list"),
        ("max_depth=4.5", "int"),
    ):
        with pytest.raises(UsageError, match=f"expected {kind}"):
            parse_params([bad])
