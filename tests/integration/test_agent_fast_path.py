"""Scoring requests skip FastAPI's routing and answer exactly as the routed stack does.

Two real agents on 127.0.0.1 serve the same bundle, one with the fast path
and one without; every request below (good, malformed, wrong model or
version, too large, binary) must get the same status and body from both.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
import starlette.routing
from prometheus_client.parser import text_string_to_metric_families

from edgeloop_agent.api import quick_infer
from edgeloop_agent.api.app import create_app
from edgeloop_agent.api.fast_path import match
from edgeloop_agent.api.routes import infer, infer_version, predict

from ..conftest import free_port
from ..servers import serve_app
from .test_agent_http import SENSORS, activate, settings_for


def test_the_scoring_paths_and_only_they_match() -> None:
    assert match("/predict") == (predict, {})
    assert match("/v2/models/pump-failure/infer") == (infer, {"name": "pump-failure"})
    assert match("/v2/models/m/versions/3/infer") == (
        infer_version,
        {"name": "m", "version": "3"},
    )
    for other in (
        "/predict/",
        "/v2/models//infer",
        "/v2/models/m/versions//infer",
        "/v2/models/m/ready",
        "/v2/models/m/x/3/infer",
        "/v1/models/m/infer",
        "/metrics",
    ):
        assert match(other) is None, other


def _requests(bundle_inputs: int) -> list[tuple[str, str, bytes, dict[str, str]]]:
    row = [0.5] * bundle_inputs
    infer_body = {
        "id": "r1",
        "inputs": [
            {
                "name": "input",
                "shape": [2, bundle_inputs],
                "datatype": "FP32",
                "data": [row, row],
            }
        ],
    }
    binary_head = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [1, bundle_inputs],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 4 * bundle_inputs},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    blob = np.full(bundle_inputs, 0.5, dtype="<f4").tobytes()
    reading = {"readings": [{"entity": "p1", "values": SENSORS}]}
    plain = {"content-type": "application/json"}
    return [
        ("POST", "/predict", json.dumps(reading).encode(), plain),
        ("POST", "/predict", b'{"readings": [{"entity": "p1", "values": {}}]}', plain),
        ("POST", "/predict", b"{not json", plain),
        (
            "POST",
            "/predict",
            json.dumps({"readings": [reading["readings"][0]] * 101}).encode(),
            plain,
        ),
        ("POST", "/predict", b"x" * 300_000, plain),
        (
            "POST",
            "/v2/models/pump-failure/infer",
            json.dumps(infer_body).encode(),
            plain,
        ),
        (
            "POST",
            "/v2/models/edge-model/versions/1/infer",
            json.dumps(infer_body).encode(),
            plain,
        ),
        (
            "POST",
            "/v2/models/edge-model/versions/9/infer",
            json.dumps(infer_body).encode(),
            plain,
        ),
        ("POST", "/v2/models/other/infer", json.dumps(infer_body).encode(), plain),
        ("POST", "/v2/models/pump-failure/infer", b'{"inputs": []}', plain),
        *(
            ("POST", "/v2/models/pump-failure/infer", json.dumps(body).encode(), plain)
            for body in _odd_infer_bodies(infer_body, bundle_inputs)
        ),
        (
            "POST",
            "/v2/models/pump-failure/infer",
            _chunked(json.dumps(infer_body).encode()),
            plain,
        ),
        (
            "POST",
            "/v2/models/pump-failure/infer",
            binary_head + blob,
            {"Inference-Header-Content-Length": str(len(binary_head))},
        ),
        ("GET", "/v2/models/pump-failure/infer", b"", {}),
    ]


def _odd_infer_bodies(good: dict, width: int) -> list[dict]:
    """Bodies the quick infer path must decline or answer exactly as the routed one."""
    tensor = good["inputs"][0]
    flat = [0.25] * (2 * width)

    def with_tensor(**change) -> dict:
        return {"inputs": [{**tensor, **change}]}

    return [
        with_tensor(data=flat),  # flat instead of nested: answered quickly
        with_tensor(data=[1] * (2 * width)),  # integers are numbers too
        with_tensor(datatype="FP64"),
        {**good, "id": None},
        with_tensor(data=["0.5"] + flat[1:]),  # a string is refused, not converted
        with_tensor(data=[True] + flat[1:]),  # so is a boolean
        with_tensor(data=[None] + flat[1:]),  # null is a missing input
        with_tensor(data=[1e39] + flat[1:]),  # beyond FP32
        with_tensor(data=flat[1:]),  # one value short
        with_tensor(data=[[0.5] * width, [0.5] * (width - 1) + [[0.5]]]),
        with_tensor(data=[[0.5] * (2 * width)]),  # nested unevenly, right count
        with_tensor(shape=[1, width]),
        with_tensor(shape=[2.0, width]),
        with_tensor(shape=[0, width], data=[]),
        with_tensor(datatype="INT8"),
        with_tensor(name="x"),
        {**good, "id": 7},
        {**good, "outputs": [{"name": "alarm"}]},
        {**good, "outputs": [{"name": "nope"}]},
        {**good, "parameters": {"binary_data_output": True}},
        {**good, "extra": 1},
        {"inputs": [tensor, tensor]},
        {"inputs": [{**tensor, "parameters": {}}]},
        [good],
    ]


def _chunked(body: bytes) -> list[bytes]:
    """A body to send with chunked encoding (no Content-Length): the full stack's limits."""
    return [body[:10], body[10:]]


@pytest.fixture()
def two_agents(tmp_path, registry_with_champion):
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(registry_with_champion["run"].bundle_dir, bundle)
    urls = []
    with (
        serve_app(
            create_app(settings_for(tmp_path / "fast"), fast_path=True),
            free_port(),
            lifespan="on",
        ) as fast,
        serve_app(
            create_app(settings_for(tmp_path / "routed"), fast_path=False),
            free_port(),
            lifespan="on",
        ) as routed,
    ):
        for url, name in ((fast, "fast"), (routed, "routed")):
            settings = settings_for(tmp_path / name)
            settings.model.desired_model_path.parent.mkdir(parents=True, exist_ok=True)
            activate(url, settings, bundle)
            urls.append(url)
        yield urls[0], urls[1]


def test_fast_and_routed_agents_answer_alike(two_agents, monkeypatch) -> None:
    fast, routed = two_agents
    routed_calls = []
    real = starlette.routing.Router.__call__

    async def counting(self, scope, receive, send):
        routed_calls.append(scope["path"])
        await real(self, scope, receive, send)

    monkeypatch.setattr(starlette.routing.Router, "__call__", counting)
    quick_answers = []
    real_answer = quick_infer.answer

    def answering(app, model, raw):
        found = real_answer(app, model, raw)
        quick_answers.append(found is not None)
        return found

    monkeypatch.setattr(quick_infer, "answer", answering)
    inputs = httpx.get(f"{fast}/v2/models/pump-failure").json()["inputs"][0]["shape"][1]
    for method, path, body, headers in _requests(inputs):
        answers = []
        for base in (fast, routed):
            routed_calls.clear()
            # a list of chunks goes as an iterator: httpx then sends it chunked
            content = body if isinstance(body, bytes) else iter(body)
            response = httpx.request(
                method, base + path, content=content, headers=headers
            )
            answers.append(
                (
                    response.status_code,
                    response.headers.get("content-type"),
                    response.headers.get("inference-header-content-length"),
                    response.content,
                    list(routed_calls),
                )
            )
        (f_status, f_type, f_len, f_body, f_routed) = answers[0]
        (r_status, r_type, r_len, r_body, r_routed) = answers[1]
        assert (f_status, f_type, f_len) == (r_status, r_type, r_len), path
        if f_type and f_type.startswith("application/json"):
            assert json.loads(f_body) == json.loads(r_body), (path, f_body, r_body)
        else:
            assert f_body == r_body, path
        stopped_by_body_limit = (
            isinstance(body, bytes) and len(body) > 200_000
        )  # answered before any route
        assert r_routed == ([] if stopped_by_body_limit else [path])
        assert f_routed == ([] if method == "POST" else [path]), (path, f_status)
    # answered by the quick path: the plain body at two paths, flat data,
    # integers, FP64, a null id; everything else was declined or refused first
    assert quick_answers.count(True) == 6, quick_answers
    assert (
        httpx.get(f"{fast}/openapi.json").json()
        == httpx.get(f"{routed}/openapi.json").json()
    )
    counted = [
        sorted(
            (s.labels["endpoint"], s.labels["code"], s.value)
            for family in text_string_to_metric_families(
                httpx.get(f"{url}/metrics").text
            )
            for s in family.samples
            if s.name == "edgeloop_requests_total"
        )
        for url in (fast, routed)
    ]
    # the fast path counts requests and errors the same way
    assert counted[0] == counted[1] and any(c[1] >= "400" for c in counted[0])


def test_an_infer_body_that_never_comes_gets_408_and_the_agent_goes_on(
    tmp_path, registry_with_champion
) -> None:
    import shutil
    import socket

    bundle = tmp_path / "bundle"
    shutil.copytree(registry_with_champion["run"].bundle_dir, bundle)
    settings = settings_for(tmp_path)
    settings.server.body_timeout_s = 1
    settings.model.desired_model_path.parent.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with serve_app(create_app(settings, fast_path=True), port, lifespan="on") as url:
        activate(url, settings, bundle)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.settimeout(20)  # a bound for the test, far above the 1 s deadline
            sock.sendall(
                b"POST /v2/models/pump-failure/infer HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            )
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"no data for 1 s" in answer
        width = httpx.get(f"{url}/v2/models/pump-failure").json()["inputs"][0]["shape"][
            1
        ]
        good = httpx.post(
            f"{url}/v2/models/pump-failure/infer",
            json={
                "inputs": [
                    {
                        "name": "input",
                        "shape": [1, width],
                        "datatype": "FP32",
                        "data": [0.5] * width,
                    }
                ]
            },
        )
        assert good.status_code == 200 and good.json()["outputs"][0]["shape"] == [1, 2]
