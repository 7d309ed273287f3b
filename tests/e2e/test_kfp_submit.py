"""Submit train-edge-model to a real Kubeflow Pipelines server (opt-in: --with-e2e).

Needs EDGELOOP_E2E_KFP_HOST (the KFP API URL), EDGELOOP_E2E_DATA (a dataset path
the cluster's component image can read) and EDGELOOP_E2E_TRACKING_URI (an MLflow
server reachable from the cluster).
"""

import json
import os

import pytest
from typer.testing import CliRunner

from edgeloop.cli import app

pytestmark = pytest.mark.e2e


def test_pipeline_run_submits_to_kubeflow(monkeypatch):
    host = os.environ.get("EDGELOOP_E2E_KFP_HOST")
    data = os.environ.get("EDGELOOP_E2E_DATA")
    uri = os.environ.get("EDGELOOP_E2E_TRACKING_URI")
    if not (host and data and uri):
        pytest.fail(
            "set EDGELOOP_E2E_KFP_HOST, EDGELOOP_E2E_DATA and EDGELOOP_E2E_TRACKING_URI"
        )
    monkeypatch.setenv("EDGELOOP_REGISTRY__TRACKING_URI", uri)
    result = CliRunner().invoke(
        app, ["-o", "json", "pipeline", "run", "--data", data, "--kfp-host", host]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run_id"]
