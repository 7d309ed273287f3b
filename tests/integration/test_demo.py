"""`edgeloop demo --train-only --fast`: step 1 of the loop alone, small."""

import json

import pytest
from typer.testing import CliRunner

from edgeloop.cli import app

pytestmark = [pytest.mark.kfp_local, pytest.mark.slow]


def test_demo_trains_registers_promotes_and_summarises(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["-o", "json", "demo", "--train-only", "--fast"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["model"] == "pump-failure:1" and summary["promoted"] is True
    assert all(g["passed"] for g in summary["gates"])
    assert summary["lineage"]["data_hash"] and summary["lineage"][
        "pipeline_run_id"
    ].startswith("train-edge-model-")
    assert "mlflow ui --backend-store-uri sqlite:///" in result.stderr
    assert (tmp_path / "home" / "demo-loop" / "mlflow.db").is_file()
