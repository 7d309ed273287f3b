"""Scoring requests skip FastAPI's routing and answer exactly as the routed stack does.

Two real agents on 127.0.0.1 serve the same bundle, one with the fast path
and one without; every request below (good, malformed, wrong model or
version, too large, binary) must get the same status and body from both.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
import starlette.routing
from prometheus_client.parser import text_string_to_metric_families

from edgeloop_agent.api import quick_infer
from edgeloop_agent.api.app import create_app
from edgeloop_agent.api.fast_path import AgentApp, match
from edgeloop_agent.api.quick_protocol import agent_http_protocol
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


def _asgi_calls(monkeypatch) -> list[str]:
    """The paths of HTTP requests that reach the agent's ASGI app, as they come."""
    calls: list[str] = []
    real_app = AgentApp.__call__

    async def reaching_the_app(self, scope, receive, send):
        if scope["type"] == "http":
            calls.append(scope["path"])
        await real_app(self, scope, receive, send)

    monkeypatch.setattr(AgentApp, "__call__", reaching_the_app)
    return calls


@pytest.fixture()
def three_agents(tmp_path, registry_with_champion):
    """The agent as ``edgeloop-agent serve`` runs it, its ASGI app alone, and routed."""
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(registry_with_champion["run"].bundle_dir, bundle)
    served = create_app(settings_for(tmp_path / "served"), fast_path=True)
    settings = settings_for(tmp_path / "served")
    urls = []
    with (
        serve_app(
            served,
            free_port(),
            lifespan="on",
            http=agent_http_protocol(
                served, settings.server.header_timeout_s, settings.server.body_timeout_s
            ),
            access_log=False,  # as `edgeloop-agent serve` runs it
        ) as in_protocol,
        serve_app(
            create_app(settings_for(tmp_path / "asgi"), fast_path=True),
            free_port(),
            lifespan="on",
            access_log=False,  # one logger per process: on for one, on for all
        ) as asgi,
        serve_app(
            create_app(settings_for(tmp_path / "routed"), fast_path=False),
            free_port(),
            lifespan="on",
            access_log=False,
        ) as routed,
    ):
        for url, name in ((in_protocol, "served"), (asgi, "asgi"), (routed, "routed")):
            settings = settings_for(tmp_path / name)
            settings.model.desired_model_path.parent.mkdir(parents=True, exist_ok=True)
            activate(url, settings, bundle)
            urls.append(url)
        yield urls


def _comparable(response: httpx.Response) -> list[tuple[str, str]]:
    """The response's headers but the clock's."""
    return sorted((k, v) for k, v in response.headers.items() if k != "date")


def test_fast_and_routed_agents_answer_alike(three_agents, monkeypatch) -> None:
    in_protocol, asgi, routed = three_agents
    routed_calls = []
    real = starlette.routing.Router.__call__

    async def counting(self, scope, receive, send):
        routed_calls.append(scope["path"])
        await real(self, scope, receive, send)

    monkeypatch.setattr(starlette.routing.Router, "__call__", counting)
    asgi_calls = _asgi_calls(monkeypatch)
    quick_answers = []
    real_answer = quick_infer.answer

    def answering(app, model, raw):
        found = real_answer(app, model, raw)
        quick_answers.append(found is not None)
        return found

    monkeypatch.setattr(quick_infer, "answer", answering)
    inputs = httpx.get(f"{asgi}/v2/models/pump-failure").json()["inputs"][0]["shape"][1]
    in_place = 0
    for method, path, body, headers in _requests(inputs):
        answers = []
        for base in (in_protocol, asgi, routed):
            routed_calls.clear()
            asgi_calls.clear()
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
                    list(asgi_calls),
                    _comparable(response),
                )
            )
        in_place += answers[0][5] == []
        for fast in answers[:2]:
            (f_status, f_type, f_len, f_body, f_routed, _, f_headers) = fast
            (r_status, r_type, r_len, r_body, r_routed, _, r_headers) = answers[2]
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
        # byte for byte what the ASGI path answers, headers included
        assert answers[0][3] == answers[1][3], path
        assert answers[0][6] == answers[1][6], path
    # answered by the quick path: the plain body at two paths, flat data,
    # integers, FP64, a null id; everything else was declined or refused first
    assert quick_answers.count(True) == 2 * 6, quick_answers
    # ... and by the served agent without an ASGI call: those six (an unknown
    # model or version takes uvicorn's path, which answers 404 before the body)
    assert in_place == 6, in_place
    assert (
        httpx.get(f"{asgi}/openapi.json").json()
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
        for url in (in_protocol, asgi, routed)
    ]
    # the fast paths count requests and errors the same way
    assert counted[0] == counted[1] == counted[2]
    assert any(c[1] >= "400" for c in counted[0])


@contextmanager
def _one_agent(
    tmp_path, bundle_dir, in_protocol: bool, body_timeout_s: float = 30, handle=None
):
    """A fast agent served as ``edgeloop-agent serve`` serves it, or its ASGI app alone."""
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(bundle_dir, bundle)
    settings = settings_for(tmp_path)
    settings.server.body_timeout_s = body_timeout_s
    settings.model.desired_model_path.parent.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, fast_path=True)
    http = (
        agent_http_protocol(app, settings.server.header_timeout_s, body_timeout_s)
        if in_protocol
        else "auto"
    )
    port = free_port()
    with serve_app(
        app, port, lifespan="on", http=http, access_log=False, handle=handle
    ) as url:
        activate(url, settings, bundle)
        yield url, port


def _plain_request(width: int, rows: int = 1) -> bytes:
    body = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [rows, width],
                    "datatype": "FP32",
                    "data": [0.5] * (rows * width),
                }
            ]
        }
    ).encode()
    return (
        b"POST /v2/models/pump-failure/infer HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def _read_answers(sock, count: int) -> list[tuple[int, bytes]]:
    """``count`` HTTP answers from a keep-alive socket: (status, body) each."""
    reader = sock.makefile("rb")
    answers = []
    for _ in range(count):
        status = int(reader.readline().split()[1])
        length = 0
        while (line := reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        answers.append((status, reader.read(length)))
    return answers


@pytest.mark.parametrize("in_protocol", [True, False], ids=["served", "asgi"])
def test_an_infer_body_that_never_comes_gets_408_and_the_agent_goes_on(
    tmp_path, registry_with_champion, in_protocol
) -> None:
    import socket

    with _one_agent(
        tmp_path, registry_with_champion["run"].bundle_dir, in_protocol, 1
    ) as (url, port):
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
        assert b"connection: close" in answer
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


def test_the_served_agent_answers_split_late_and_pipelined_requests_in_order(
    tmp_path, registry_with_champion, monkeypatch
) -> None:
    """Bodies in pieces, a pause within the deadline, several requests in one write."""
    import socket
    import time

    asgi_calls = _asgi_calls(monkeypatch)
    with _one_agent(tmp_path, registry_with_champion["run"].bundle_dir, True) as (
        url,
        port,
    ):
        width = httpx.get(f"{url}/v2/models/pump-failure").json()["inputs"][0]["shape"][
            1
        ]
        one, two = _plain_request(width, 1), _plain_request(width, 2)
        health = b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n"
        asgi_calls.clear()
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.settimeout(20)
            # headers, then the body in two pieces with a pause between
            head, body = one.split(b"\r\n\r\n", 1)
            for piece in (head + b"\r\n\r\n", body[:7], body[7:]):
                sock.sendall(piece)
                time.sleep(0.3)
            # three requests in one write, one of them not an infer request
            sock.sendall(two + health + one)
            answers = _read_answers(sock, 4)
        assert [status for status, _ in answers] == [200, 200, 200, 200]
        shapes = [
            json.loads(b)["outputs"][0]["shape"] for _, b in (answers[:2] + answers[3:])
        ]
        assert shapes == [[1, 2], [2, 2], [1, 2]]
        # the first three infer requests were answered in place; the last one
        # waited behind the health check's ASGI task, so it went that way too
        assert asgi_calls == ["/v2/health/ready", "/v2/models/pump-failure/infer"]


def test_a_request_half_read_when_the_agent_stops_is_answered_then_closed(
    tmp_path, registry_with_champion
) -> None:
    """Graceful shutdown lets a quick request whose body is still coming finish."""
    import socket
    import time

    handle: list = []
    with _one_agent(
        tmp_path, registry_with_champion["run"].bundle_dir, True, handle=handle
    ) as (url, port):
        width = httpx.get(f"{url}/v2/models/pump-failure").json()["inputs"][0]["shape"][
            1
        ]
        request = _plain_request(width)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.settimeout(20)
            sock.sendall(request[:-5])  # all but the body's last bytes
            time.sleep(0.3)
            handle[0].should_exit = True  # the server starts its shutdown
            time.sleep(0.5)
            sock.sendall(request[-5:])
            answer = b""
            while chunk := sock.recv(4096):  # the server closes after answering
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert b"connection: close" in answer.lower()
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["outputs"][0]["shape"] == [1, 2]


@pytest.mark.parametrize("in_protocol", [True, False], ids=["served", "asgi"])
def test_an_unknown_model_is_404_before_its_body_as_on_the_routed_path(
    tmp_path, registry_with_champion, in_protocol
) -> None:
    import socket

    with (
        _one_agent(tmp_path, registry_with_champion["run"].bundle_dir, in_protocol) as (
            _,
            port,
        ),
        socket.create_connection(("127.0.0.1", port)) as sock,
    ):
        sock.settimeout(10)  # far below the 30 s body deadline
        sock.sendall(
            b"POST /v2/models/nope/infer HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        status, body = _read_answers(sock, 1)[0]
    assert status == 404 and b"nope" in body
