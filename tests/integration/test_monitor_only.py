"""Monitor-only bundles: unlabeled history watched at the edge before any model exists.

`edgeloop data profile` on data without labels writes a bundle with no model;
the real agent fetches it (over HTTP, where no model file exists), keeps drift
and data-quality windows and delivers them to a real intake; asking it to
infer is a clear 409. The anomaly model on the same data is
`test_unlabeled.py`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import httpx
import paho.mqtt.client as mqtt
import pandas as pd
import pydantic
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from edgeloop.cli import app as cli
from edgeloop_agent.api.app import create_app as create_agent
from edgeloop_agent.contracts import BundleManifest, DesiredModel, read_manifest
from edgeloop_agent.settings import MqttSettings

from ..conftest import free_port
from ..metrics_text import metric
from ..servers import file_server, serve_app
from .test_agent_http import SENSORS, settings_for, wait_for
from .test_agent_mqtt import broker  # noqa: F401 - a real mosquitto
from .test_intake import intake  # noqa: F401 - the real intake fixture

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def unlabeled(fleet_dir, tmp_path_factory):
    data = tmp_path_factory.mktemp("unlabeled") / "data"
    shutil.copytree(fleet_dir, data)
    schema = yaml.safe_load((data / "schema.yaml").read_text())
    del schema["label"]
    (data / "schema.yaml").write_text(yaml.safe_dump(schema))
    (data / "maintenance_log.csv").unlink()
    return data


@pytest.fixture(scope="module")
def profiled(unlabeled, tmp_path_factory):
    out = tmp_path_factory.mktemp("profile") / "pump-watch"
    result = CliRunner().invoke(
        cli,
        [
            "-o",
            "json",
            "data",
            "profile",
            str(unlabeled),
            "--out",
            str(out),
            "--name",
            "pump-watch",
        ],
    )
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_profile_writes_a_bundle_with_no_model(profiled):
    out, summary = profiled
    assert summary["kind"] == "monitor-only" and summary["model"].startswith(
        "pump-watch:profile-"
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "SHA256SUMS",
        "bundle.json",
        "desired-model.json",
    ]
    manifest = read_manifest(out)
    assert (
        manifest.monitor_only
        and manifest.output is None
        and manifest.model_sha256 is None
    )
    assert [r.name for r in manifest.reference] == manifest.features.input_names()
    assert manifest.reference_sample.inputs and not manifest.reference_sample.scores
    assert manifest.lineage.data_hash and manifest.lineage.pipeline_run_id.startswith(
        "profile-"
    )
    # a site with no edgeloop checks the copy with coreutils
    check = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    record = DesiredModel.model_validate_json((out / "desired-model.json").read_text())
    assert record.version == summary["model"].split(":")[1]


def test_a_monitor_only_manifest_cannot_carry_a_model_and_a_model_needs_one(profiled):
    out, _ = profiled
    data = json.loads((out / "bundle.json").read_text())
    with pytest.raises(
        pydantic.ValidationError, match="monitor-only bundle has no model"
    ):
        BundleManifest.model_validate({**data, "model_sha256": "0" * 64})
    with pytest.raises(
        pydantic.ValidationError, match="model bundle needs model_sha256"
    ):
        BundleManifest.model_validate({**data, "kind": "model"})


def test_the_agent_serves_it_windows_reach_the_intake_and_infer_is_refused(
    profiled,
    intake,  # noqa: F811
    tmp_path,
):
    out, summary = profiled
    url, store, _ = intake
    token = store.create_token("node-a")
    settings = settings_for(tmp_path / "agent", url)
    settings.outbox.token = token
    version = summary["model"].split(":")[1]
    with (
        file_server(out.parent, free_port()) as (files, _),
        serve_app(create_agent(settings), free_port(), lifespan="on") as agent,
    ):
        # fetched over HTTP: bundle.json only, no model.onnx exists to fetch
        record = DesiredModel(
            model_name="pump-watch",
            version=version,
            bundle_uri=f"{files}/{out.name}",
            bundle_sha256=summary["bundle_sha256"],
        )
        settings.model.desired_model_path.write_text(record.model_dump_json())
        wait_for(
            lambda: httpx.get(f"{agent}/v2/health/ready").status_code == 200,
            what="monitor-only bundle active",
        )
        meta = httpx.get(f"{agent}/v2/models/pump-watch").json()
        assert meta["outputs"] == [] and meta["parameters"]["monitor_only"] is True

        first = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
        readings = [
            {
                "entity": f"p{i % 3}",
                "values": {**SENSORS, "bearing_temp": None} if i == 7 else SENSORS,
                "timestamp": (first + timedelta(minutes=5 * i)).isoformat(),
            }
            for i in range(40)
        ]
        answer = httpx.post(f"{agent}/predict", json={"readings": readings})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["monitor_only"] is True and body["threshold"] is None
        assert body["model_version"] == version
        assert {(r["score"], r["alarm"]) for r in body["results"]} == {(None, False)}
        assert body["results"][7]["degraded"] and body["results"][7]["missing"] == [
            "bearing_temp"
        ]

        n = len(read_manifest(out).features.input_names())
        refused = httpx.post(
            f"{agent}/v2/models/pump-watch/infer",
            json={
                "inputs": [
                    {
                        "name": "input",
                        "datatype": "FP32",
                        "shape": [1, n],
                        "data": [0.0] * n,
                    }
                ]
            },
        )
        assert refused.status_code == 409
        assert (
            "monitor-only bundle with no model to infer with" in refused.json()["error"]
        )

        wait_for(lambda: store.count("drift") >= 2, what="drift windows at the intake")
        wait_for(lambda: store.count("sample") >= 1, what="row samples at the intake")
        wait_for(
            lambda: any(row.active_version == version for row in store.fleet()),
            what="heartbeat naming the monitor-only version",
        )
    assert store.version_drift(version).drift_reports >= 2
    summary_rows = [r for r in store.drift_summary() if r["version"] == version]
    assert summary_rows and summary_rows[0]["site"] == "offshore-01"


def test_profile_refuses_bad_input_in_one_line(unlabeled, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "other.txt").write_text("x")
    result = CliRunner().invoke(
        cli, ["data", "profile", str(unlabeled), "--out", str(taken)]
    )
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        == f"error: {taken}: not a new or empty directory; choose a new --out"
    )

    broken = tmp_path / "broken"
    shutil.copytree(unlabeled, broken)
    frame = pd.read_parquet(broken / "readings.parquet")
    frame.loc[frame.index[: len(frame) // 10], "discharge_pressure"] = -50.0
    frame.to_parquet(broken / "readings.parquet")
    result = CliRunner().invoke(
        cli, ["data", "profile", str(broken), "--out", str(tmp_path / "new")]
    )
    assert result.exit_code == 1
    assert "column 'discharge_pressure': rule out_of_range" in result.stderr
    assert "Traceback" not in result.output

    result = CliRunner().invoke(
        cli,
        [
            "data",
            "profile",
            str(unlabeled),
            "--out",
            str(tmp_path / "n"),
            "--name",
            "pump watch",
        ],
    )
    assert result.exit_code == 1 and not (tmp_path / "n").exists()
    assert result.stderr.startswith("error: model name 'pump watch': use letters")


def test_mqtt_readings_feed_the_windows_and_no_score_is_published(
    profiled,
    broker,  # noqa: F811
    tmp_path,
):
    from .test_agent_mqtt import Listener

    out, summary = profiled
    settings = settings_for(tmp_path)
    settings.mqtt = MqttSettings(enabled=True, port=broker, batch_wait_s=0.02)
    listener = Listener(broker, ["edgeloop/+/+/score", "edgeloop/+/+/alarm"])
    publisher = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="monitor-only-mapper"
    )
    publisher.connect("127.0.0.1", broker)
    publisher.loop_start()
    try:
        with serve_app(create_agent(settings), free_port(), lifespan="on") as url:
            record = DesiredModel(
                model_name="pump-watch",
                version=summary["model"].split(":")[1],
                bundle_uri=str(out),
                bundle_sha256=summary["bundle_sha256"],
            )
            settings.model.desired_model_path.write_text(record.model_dump_json())
            wait_for(
                lambda: httpx.get(f"{url}/v2/health/ready").status_code == 200,
                what="monitor-only bundle active",
            )
            wait_for(
                lambda: (
                    metric(httpx.get(f"{url}/metrics").text, "edgeloop_mqtt_connected")
                    == 1
                ),
                what="bridge",
            )
            for i in range(25):  # a window is 20 readings in these settings
                publisher.publish(
                    f"edgeloop/offshore-01/p{i % 2}/readings",
                    json.dumps({"ts": f"2026-01-01T00:{i:02d}:00Z", "values": SENSORS}),
                    qos=1,
                )
            wait_for(
                lambda: (
                    metric(
                        httpx.get(f"{url}/metrics").text, "edgeloop_mqtt_scored_total"
                    )
                    == 25
                ),
                what="readings taken",
            )
            metrics = httpx.get(f"{url}/metrics").text
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        listener.stop()
    assert listener.messages == []
    assert metric(metrics, "edgeloop_drift_windows_total") >= 1
    assert metric(metrics, "edgeloop_alarms_total") in (None, 0)
