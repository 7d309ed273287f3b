"""The edge agent as a real uvicorn server on 127.0.0.1, fed by a desired-model file."""

from __future__ import annotations

import json
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from edgeloop_agent.api.app import create_app
from edgeloop_agent.contracts import (
    MANIFEST_FILE,
    DesiredModel,
    bundle_digest,
    verify_bundle,
)
from edgeloop_agent.settings import (
    AgentSettings,
    DriftSettings,
    ModelSettings,
    NodeSettings,
    OutboxSettings,
    ScoringSettings,
)

from ..conftest import free_port
from ..metrics_text import metric
from ..receiver import Received, receiver_app
from ..servers import serve_app

SENSORS = {
    "vibration_rms": 2.1,
    "bearing_temp": 41.0,
    "motor_current": 150.0,
    "discharge_pressure": 90.0,
    "suction_pressure": 4.4,
    "flow_rate": 210.0,
    "speed_rpm": 2950.0,
    "ambient_temp": 15.0,
}


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def settings_for(tmp: Path, intake: str = "", **drift) -> AgentSettings:
    return AgentSettings(
        node=NodeSettings(id="node-a", site="offshore-01", cohort="flowserve-hpx"),
        model=ModelSettings(
            desired_model_path=tmp / "desired.json",
            cache_dir=tmp / "cache",
            poll_interval_s=0.1,
        ),
        drift=DriftSettings(
            window_readings=drift.get("window_readings", 20),
            sample_size=5,
            window_seconds=60,
        ),
        outbox=OutboxSettings(
            path=tmp / "outbox.sqlite",
            intake_url=intake,
            token="node-a-token",
            retry_delays_s=(0.2,),
            flush_interval_s=0.1,
            heartbeat_interval_s=0.5,
        ),
        scoring=ScoringSettings(max_batch_rows=100, max_body_bytes=200_000),
    )


def desired(bundle: Path, version: str) -> DesiredModel:
    return DesiredModel(
        model_name="pump-failure",
        version=version,
        bundle_uri=str(bundle),
        bundle_sha256=bundle_digest(bundle),
    )


def second_bundle(bundle: Path, dst: Path) -> Path:
    """The same model under another manifest (so another digest): a new version."""
    shutil.copytree(bundle, dst)
    data = json.loads((dst / MANIFEST_FILE).read_text())
    data["lineage"]["pipeline_run_id"] = "retrained"
    (dst / MANIFEST_FILE).write_text(json.dumps(data))
    return dst


@contextmanager
def running_agent(settings: AgentSettings):
    with serve_app(create_app(settings), free_port(), lifespan="on") as url:
        yield url


@pytest.fixture(scope="module")
def receiver():
    state = Received()
    with serve_app(receiver_app(state), free_port()) as url:
        yield url, state


@pytest.fixture()
def source_bundle(registry_with_champion, tmp_path) -> Path:
    dst = tmp_path / "bundles" / "v1"
    shutil.copytree(registry_with_champion["run"].bundle_dir, dst)
    return dst


@pytest.fixture()
def agent(tmp_path, source_bundle, receiver):
    settings = settings_for(tmp_path, receiver[0])
    with running_agent(settings) as url:
        yield url, settings, source_bundle


def activate(
    url: str, settings: AgentSettings, bundle: Path, version: str = "1"
) -> None:
    settings.model.desired_model_path.write_text(
        desired(bundle, version).model_dump_json()
    )
    wait_for(
        lambda: httpx.get(f"{url}/v2/health/ready").status_code == 200,
        what="model ready",
    )


def test_ready_only_once_a_verified_model_is_active(agent):
    url, settings, bundle = agent
    assert httpx.get(f"{url}/v2/health/live").json() == {"live": True}
    not_ready = httpx.get(f"{url}/v2/health/ready")
    assert not_ready.status_code == 503
    early = httpx.post(
        f"{url}/predict", json={"readings": [{"entity": "p1", "values": SENSORS}]}
    )
    assert early.status_code == 503 and early.json() == {
        "error": "no verified model is active yet"
    }
    activate(url, settings, bundle)
    meta = httpx.get(f"{url}/v2/models/pump-failure").json()
    assert meta["versions"] == ["1"] and meta["inputs"][0]["shape"] == [-1, 32]
    assert httpx.get(f"{url}/v2/models/edge-model/ready").json() == {
        "name": "pump-failure",
        "ready": True,
    }


def test_open_inference_protocol_client_interoperates(agent):
    from open_inference.openapi.client import OpenInferenceClient
    from open_inference.openapi.types import InferenceRequest, RequestInput

    url, settings, bundle = agent
    activate(url, settings, bundle)
    manifest = verify_bundle(bundle)
    rows = [
        [0.0 if v is None else v for v in r]
        for r in manifest.reference_sample.inputs[:8]
    ]
    http = httpx.Client(base_url=url, timeout=60)
    client = OpenInferenceClient(base_url=url, httpx_client=http)
    client.check_server_readiness()
    client.check_model_readiness("pump-failure")
    assert client.read_model_metadata("pump-failure").name == "pump-failure"
    response = client.model_infer(
        "pump-failure",
        request=InferenceRequest(
            inputs=[
                RequestInput(
                    name="input",
                    shape=[8, 32],
                    datatype="FP32",
                    data=[v for r in rows for v in r],
                )
            ]
        ),
    )
    probs = next(o for o in response.outputs if o.name == "probabilities")
    assert probs.shape == [8, 2]
    data = probs.data.__root__ if hasattr(probs.data, "__root__") else probs.data
    got = np.asarray([getattr(v, "__root__", v) for v in data], dtype=float).reshape(
        8, 2
    )[:, 1]
    complete = [
        i for i, r in enumerate(manifest.reference_sample.inputs[:8]) if None not in r
    ]
    np.testing.assert_allclose(
        got[complete],
        np.asarray(manifest.reference_sample.scores[:8])[complete],
        atol=1e-6,
    )
    http.close()  # the generated client never closes its connection pool


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_scores_in_binary_and_json_modes(agent, binary):
    """Before: tritonclient's default (binary tensors after a JSON header) got
    422 "Invalid JSON: trailing characters"; now both modes score the same."""
    import tritonclient.http as triton

    url, settings, bundle = agent
    activate(url, settings, bundle)
    manifest = verify_bundle(bundle)
    rows = np.asarray(
        [
            [np.nan if v is None else v for v in r]
            for r in manifest.reference_sample.inputs[:8]
        ],
        dtype=np.float32,
    )
    client = triton.InferenceServerClient(url.removeprefix("http://"))
    try:
        assert client.is_server_ready() and client.is_model_ready("pump-failure")
        assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
        tensor = triton.InferInput("input", list(rows.shape), "FP32")
        tensor.set_data_from_numpy(rows, binary_data=binary)
        outputs = (
            None  # tritonclient then asks for every output in binary
            if binary
            else [
                triton.InferRequestedOutput("probabilities", binary_data=False),
                triton.InferRequestedOutput("alarm", binary_data=False),
            ]
        )
        result = client.infer("pump-failure", [tensor], outputs=outputs)
    finally:
        client.close()
    probabilities = result.as_numpy("probabilities")
    alarms = result.as_numpy("alarm")
    assert probabilities.shape == (8, 2) and alarms.shape == (8,)
    np.testing.assert_allclose(
        probabilities[:, 1], manifest.reference_sample.scores[:8], atol=1e-6
    )
    assert (alarms == (probabilities[:, 1] >= manifest.output.threshold)).all()


def test_binary_tensors_that_do_not_add_up_are_422(agent):
    url, settings, bundle = agent
    activate(url, settings, bundle)
    endpoint = f"{url}/v2/models/pump-failure/infer"
    values = np.full(64, 0.5, dtype="<f4").tobytes()

    def send(size: int, blob: bytes, length: str | None = None) -> httpx.Response:
        head = json.dumps(
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [2, 32],
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": size},
                    }
                ]
            }
        ).encode()
        header = str(len(head)) if length is None else length
        return httpx.post(
            endpoint,
            content=head + blob,
            headers={"Inference-Header-Content-Length": header},
        )

    ok = send(len(values), values)
    assert ok.status_code == 200 and "Inference-Header-Content-Length" not in ok.headers
    assert len(ok.json()["outputs"][0]["data"]) == 4
    for response, words in (
        (send(len(values), values[:-4]), "256 bytes declared, 252 sent"),
        (send(len(values) - 2, values[:-2]), "not a whole number of FP32"),
        (send(len(values), values, length="x"), "not a byte count"),
        (send(len(values), values, length="99999"), "outside the body"),
        (send(-1, values), "expected a byte count"),
    ):
        assert response.status_code == 422, response.text
        assert words in response.json()["error"], response.json()
    trailing = httpx.post(
        endpoint,
        content=b'{"inputs":[{"name":"input","shape":[1,32],"datatype":"FP32","data":'
        + json.dumps([0.5] * 32).encode()
        + b"}]}"
        + values,
        headers={"Inference-Header-Content-Length": "0"},
    )
    assert trailing.status_code == 422


def test_predict_keeps_per_pump_history_and_reports_the_version(agent):
    url, settings, bundle = agent
    activate(url, settings, bundle)
    batch = {
        "readings": [{"entity": f"p{i % 3}", "values": SENSORS} for i in range(30)]
    }
    answer = httpx.post(f"{url}/predict", json=batch).json()
    assert answer["model_version"] == "1" and len(answer["results"]) == 30
    assert {r["entity"] for r in answer["results"]} == {"p0", "p1", "p2"}
    single = httpx.post(
        f"{url}/predict",
        json={"readings": [{"entity": "p9", "values": {**SENSORS, "flow_rate": None}}]},
    )
    assert (
        single.status_code == 200 and 0.0 <= single.json()["results"][0]["score"] <= 1.0
    )
    # a dropout is scored, and the result says it was degraded and by what
    (gap,) = single.json()["results"]
    assert gap["degraded"] is True and gap["missing"] == ["flow_rate"]
    assert answer["results"][0]["degraded"] is False
    assert "missing" not in answer["results"][0]
    text = httpx.get(f"{url}/metrics").text
    assert metric(text, "edgeloop_degraded_readings_total") == 1


@pytest.mark.parametrize(
    "path, body, status, fragment",
    [
        (
            "/predict",
            {"readings": [{"entity": "p1", "values": {**SENSORS, "torque": 1.0}}]},
            422,
            "readings[0].values.torque: unknown sensor",
        ),
        (
            "/predict",
            {"readings": [{"entity": "p1", "values": {"vibration_rms": 1.0}}]},
            422,
            "readings[0].values.bearing_temp: missing sensor",
        ),
        (
            "/predict",
            {
                "readings": [
                    {"entity": "p1", "values": {**SENSORS, "speed_rpm": "fast"}}
                ]
            },
            422,
            "readings.0.values.speed_rpm: Input should be a valid number",
        ),
        (
            # a number in a string is refused, not guessed at (strict types)
            "/predict",
            {"readings": [{"entity": "p1", "values": {**SENSORS, "speed_rpm": "50"}}]},
            422,
            "readings.0.values.speed_rpm: Input should be a valid number",
        ),
        (
            "/predict",
            {"readings": []},
            422,
            "readings: List should have at least 1 item",
        ),
        ("/predict", {"rows": []}, 422, "readings: Field required"),
        (
            "/predict",
            {"readings": [{"entity": "p1", "values": SENSORS}] * 101},
            413,
            "batch of 101 rows exceeds max_batch_rows 100",
        ),
        (
            "/v2/models/pump-failure/infer",
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [1, 3],
                        "datatype": "FP32",
                        "data": [1, 2, 3],
                    }
                ]
            },
            422,
            "inputs[0].shape: expected [batch, 32]",
        ),
        (
            "/v2/models/pump-failure/infer",
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [1, 32],
                        "datatype": "FP32",
                        "data": [0] * 32,
                    }
                ]
            },
            422,
            "unknown input 'x'",
        ),
        (
            "/v2/models/pump-failure/infer",
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [2, 32],
                        "datatype": "FP32",
                        "data": [0] * 32,
                    }
                ]
            },
            422,
            "32 values do not fill shape [2, 32]",
        ),
        (
            "/v2/models/pump-failure/infer",
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [1, 32],
                        "datatype": "INT8",
                        "data": [0] * 32,
                    }
                ]
            },
            422,
            "inputs.0.datatype",
        ),
        (
            "/v2/models/pump-failure/infer",
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [1, 32],
                        "datatype": "FP32",
                        "data": ["a"] * 32,
                    }
                ]
            },
            422,
            "inputs[0].data: expected numbers",
        ),
        (
            "/v2/models/pump-failure/infer",
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [1, 32],
                        "datatype": "FP32",
                        "data": [0] * 32,
                    }
                ],
                "outputs": [{"name": "logits"}],
            },
            422,
            "unknown output 'logits'",
        ),
        (
            "/v2/models/compressor/infer",
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [1, 32],
                        "datatype": "FP32",
                        "data": [0] * 32,
                    }
                ]
            },
            404,
            "model 'compressor' is not served",
        ),
        (
            "/v2/models/pump-failure/versions/7/infer",
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [1, 32],
                        "datatype": "FP32",
                        "data": [0] * 32,
                    }
                ]
            },
            404,
            "version '7' is not active",
        ),
    ],
)
def test_bad_input_is_a_4xx_json_error_naming_the_field(
    agent, path, body, status, fragment
):
    url, settings, bundle = agent
    activate(url, settings, bundle)
    response = httpx.post(f"{url}{path}", json=body)
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]


def test_nan_literals_and_oversized_bodies_are_refused(agent):
    url, settings, bundle = agent
    activate(url, settings, bundle)
    text = json.dumps({"readings": [{"entity": "p1", "values": SENSORS}]}).replace(
        "2950.0", "NaN"
    )
    nan = httpx.post(
        f"{url}/predict", content=text, headers={"content-type": "application/json"}
    )
    assert nan.status_code == 422 and "speed_rpm" in nan.json()["error"]
    infer = (
        '{"inputs":[{"name":"input","shape":[1,32],"datatype":"FP32","data":['
        + ",".join(["Infinity"] * 32)
        + "]}]}"
    )
    inf = httpx.post(
        f"{url}/v2/models/pump-failure/infer",
        content=infer,
        headers={"content-type": "application/json"},
    )
    assert inf.status_code == 422 and "finite" in inf.json()["error"]
    huge = httpx.post(
        f"{url}/predict",
        content=b"{" + b" " * 300_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413 and "exceeds the limit" in huge.json()["error"]


def test_open_inference_takes_missing_inputs_as_null_or_nan_and_refuses_strings(agent):
    """Before: a row with an undefined slope (each unit's first reading) could
    only go through /predict; OIP refused null and NaN, and took "1" as 1."""
    url, settings, bundle = agent
    activate(url, settings, bundle)
    endpoint = f"{url}/v2/models/pump-failure/infer"

    def infer(data_json: str) -> httpx.Response:
        body = (
            '{"inputs":[{"name":"input","shape":[2,32],"datatype":"FP32","data":'
            + data_json
            + "}]}"
        )
        return httpx.post(
            endpoint, content=body, headers={"content-type": "application/json"}
        )

    full = [0.5] * 32
    gaps = [None if i % 4 == 3 else 0.5 for i in range(32)]  # every slope missing
    ok = infer(json.dumps([full, gaps]))
    assert ok.status_code == 200, ok.text
    probabilities = ok.json()["outputs"][0]["data"]
    assert len(probabilities) == 4 and all(0.0 <= p <= 1.0 for p in probabilities)
    nan = infer(json.dumps([full, gaps]).replace("null", "NaN"))
    assert nan.status_code == 200 and nan.json()["outputs"][0]["data"] == probabilities
    text = infer(json.dumps([full, ["1"] + full[1:]]))
    assert (
        text.status_code == 422 and "expected numbers or null" in text.json()["error"]
    )


def test_reports_reach_the_intake_with_the_node_token(agent, receiver):
    url, settings, bundle = agent
    _, state = receiver
    with state.lock:  # earlier agents deliver their open windows when they stop
        state.reports.clear()
    activate(url, settings, bundle)
    httpx.post(
        f"{url}/predict",
        json={
            "readings": [{"entity": f"p{i % 4}", "values": SENSORS} for i in range(40)]
        },
    )
    wait_for(
        lambda: (
            state.kinds().get("drift", 0) >= 2
            and state.kinds().get("heartbeat", 0) >= 1
        ),
        what="reports",
    )
    assert "Bearer node-a-token" in state.auth
    drift = next(r for r in state.reports.values() if r["body"]["kind"] == "drift")
    assert (
        drift["node"] == "node-a"
        and drift["body"]["site"] == "offshore-01"
        and drift["body"]["rows"] == 20
    )
    assert len(drift["body"]["features"]) == 32 and len(drift["body"]["quality"]) == 8
    metrics = httpx.get(f"{url}/metrics").text
    for name in (
        "edgeloop_request_duration_seconds_bucket",
        "edgeloop_outbox_depth",
        "edgeloop_outbox_oldest_age_seconds",
        "edgeloop_feature_psi",
        "process_resident_memory_bytes",
    ):
        assert metric(metrics, name) is not None, name
    assert metric(metrics, "edgeloop_requests_total", endpoint="predict", code="200")
    assert metric(metrics, "edgeloop_model_info", version="1") == 1
    assert metric(metrics, "edgeloop_drift_windows_total", version="1")
    assert 0 <= metric(metrics, "edgeloop_drifted_share", version="1") <= 1
    assert "# HELP edgeloop_requests_total " in metrics
    assert httpx.get(f"{url}/openapi.json").json()["info"]["title"] == "edgeloop agent"
    assert httpx.get(f"{url}/docs").status_code == 200


def test_model_swap_under_concurrent_load_fails_no_request(tmp_path, source_bundle):
    settings = settings_for(tmp_path, window_readings=1000)
    v2 = second_bundle(source_bundle, tmp_path / "bundles" / "v2")
    with running_agent(settings) as url:
        activate(url, settings, source_bundle, "1")
        stop = threading.Event()
        outcomes: list[tuple[int, str]] = []
        lock = threading.Lock()

        def hammer(worker: int) -> None:
            with httpx.Client(base_url=url, timeout=10) as client:
                while not stop.is_set():
                    r = client.post(
                        "/predict",
                        json={
                            "readings": [{"entity": f"w{worker}", "values": SENSORS}]
                        },
                    )
                    with lock:
                        outcomes.append(
                            (r.status_code, r.json().get("model_version", ""))
                        )

        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: len(outcomes) > 50, what="load")
        settings.model.desired_model_path.write_text(desired(v2, "2").model_dump_json())
        wait_for(lambda: any(v == "2" for _, v in outcomes[-20:]), what="swap to v2")
        wait_for(lambda: len(outcomes) > 50 + 200, what="load after swap")
        stop.set()
        for t in threads:
            t.join()
    statuses = {s for s, _ in outcomes}
    assert statuses == {200}, f"failed requests during swap: {statuses}"
    versions = [v for _, v in outcomes]
    assert versions[0] == "1" and versions[-1] == "2"
    first_v2 = versions.index("2")
    assert set(versions[first_v2 + 8 :]) == {
        "2"
    }  # in-flight requests finish on v1, then only v2


def test_restart_with_no_network_serves_the_cached_model_at_once(
    tmp_path, source_bundle
):
    settings = settings_for(tmp_path)
    with running_agent(settings) as url:
        activate(url, settings, source_bundle, "1")
    shutil.rmtree(source_bundle)  # the source is gone: no way to fetch again
    settings.model.desired_model_path.unlink()
    with running_agent(settings) as url:
        assert (
            httpx.get(f"{url}/v2/health/ready").status_code == 200
        )  # no wait: restored in startup
        answer = httpx.post(
            f"{url}/predict", json={"readings": [{"entity": "p1", "values": SENSORS}]}
        ).json()
        assert answer["model_version"] == "1"


def test_alarms_name_the_sensors_behind_them(agent, tmp_path):
    """Each alarm carries its top sensors (occlusion on the node); others carry none."""
    url, settings, bundle = agent
    touchy = tmp_path / "touchy"
    shutil.copytree(bundle, touchy)
    data = json.loads((touchy / MANIFEST_FILE).read_text())
    data["output"]["threshold"] = 0.0  # every reading alarms
    (touchy / MANIFEST_FILE).write_text(json.dumps(data))
    activate(url, settings, touchy, version="7")
    hot = {**SENSORS, "vibration_rms": 30.0, "bearing_temp": 120.0}
    body = {
        "readings": [
            {"entity": "p1", "values": hot if i % 2 else SENSORS} for i in range(24)
        ]
    }
    results = httpx.post(f"{url}/predict", json=body).json()["results"]
    assert all(r["alarm"] for r in results)
    named = [r["explanation"] for r in results]
    assert all(len(e) <= 3 for e in named) and any(named)
    for explanation in named:
        shares = [item["contribution"] for item in explanation]
        assert shares == sorted(shares, reverse=True) and all(c > 0 for c in shares)
        assert {item["sensor"] for item in explanation} <= set(SENSORS)
    text = httpx.get(f"{url}/metrics").text
    assert metric(text, "edgeloop_explained_alarms_total") == 24
