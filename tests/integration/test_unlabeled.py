"""Unlabeled sensor history: an anomaly model, trained by the same steps and
served by the same agent.

Most plants start with sensor history and no failure labels; before, a label
was required and such data could not be used at all.
"""

from __future__ import annotations

import json
import shutil

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from edgeloop_components import anomaly, tasks

from ..conftest import train_through_steps
from .test_agent_http import SENSORS, activate, running_agent, settings_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def unlabeled_run(fleet_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("unlabeled")
    data = root / "data"
    shutil.copytree(fleet_dir, data)
    schema = yaml.safe_load((data / "schema.yaml").read_text())
    del schema["label"]
    (data / "schema.yaml").write_text(yaml.safe_dump(schema))
    (data / "maintenance_log.csv").unlink()
    uri = f"sqlite:///{root}/mlflow.db"
    run = train_through_steps(data, root / "work", uri)
    return run, uri


def test_the_steps_train_gate_and_bundle_an_anomaly_model(unlabeled_run):
    run, uri = unlabeled_run
    assert run.ingest["positive_share"] is None
    assert run.report["kind"] == "anomaly"
    overall = run.report["overall"]
    assert overall["target_alarm_rate"] == 0.005 and 0 < overall["threshold"] < 1
    gates = {g["name"]: g for g in run.gate["gates"]}
    assert set(gates) == {"alarm_rate", "stability", "vs_champion"}
    assert all(g["passed"] for g in gates.values()), gates
    assert run.parity < 1e-5  # the ONNX export scores like the forest
    manifest = json.loads((run.bundle_dir / "bundle.json").read_text())
    assert manifest["output"]["positive_label"] == "anomaly"
    assert manifest["output"]["threshold_policy"]["target_alarm_rate"] == 0.005
    assert {g["name"] for g in manifest["gates"]} >= {"alarm_rate", "onnx_parity"}
    assert set(manifest["metrics"]) == {"alarm_rate", "target_alarm_rate", "stability"}
    registered = tasks.register_bundle(run.bundle_dir, uri, True, True, {})
    assert registered["promoted"] and int(registered["version"]) == 1


def test_the_agent_serves_it_and_alarms_on_unusual_readings(unlabeled_run, tmp_path):
    run, _ = unlabeled_run
    bundle = tmp_path / "bundle"
    shutil.copytree(run.bundle_dir, bundle)
    settings = settings_for(tmp_path)
    with running_agent(settings) as url:
        activate(url, settings, bundle)

        def scores(values: list[dict[str, float]], entity: str) -> list[dict]:
            body = {"readings": [{"entity": entity, "values": v} for v in values]}
            answer = httpx.post(f"{url}/predict", json=body)
            assert answer.status_code == 200, answer.text
            return answer.json()["results"]

        history_rows = pd.read_parquet(run.work / "validated" / "readings.parquet")
        steady = [
            {name: float(row[name]) for name in SENSORS}
            for _, row in history_rows.iloc[200:212].iterrows()
        ]
        normal = scores(steady, "p-normal")
        # the same pump shaking itself apart: vibration, bearing heat and current swinging
        odd = scores(
            [
                {
                    **values,
                    "vibration_rms": 2.0 + 45.0 * (i % 2),
                    "bearing_temp": 40.0 + 100.0 * (i % 2),
                    "motor_current": 150.0 + 200.0 * (i % 2),
                }
                for i, values in enumerate(steady)
            ],
            "p-odd",
        )
    # the forest ranks the shaking pump above 98 % of its own history (whose
    # top 0.5 % are the failing pumps the labels would have named) and the
    # steady one among the ordinary 90 %; alarms follow the bundle's threshold
    history = anomaly_scores(run)
    assert odd[-1]["score"] > np.quantile(history, 0.98)
    assert normal[-1]["score"] < np.quantile(history, 0.9)
    threshold = run.report["overall"]["threshold"]
    for result in (*odd, *normal):
        assert result["alarm"] is (result["score"] >= threshold - 1e-6)


def anomaly_scores(run) -> np.ndarray:
    """The trained forest's scores on its training rows."""
    spec = json.loads((run.work / "split" / "feature_spec.json").read_text())
    train = pd.read_parquet(run.work / "split" / "train.parquet")
    names = [
        f"{sensor}__{agg}_w{window}"
        for window in spec["windows"]
        for sensor in spec["sensors"]
        for agg in spec["aggregates"]
    ]
    model = anomaly.load(run.work / "model.json")
    return model.scores(train[names].to_numpy(dtype=np.float32))
