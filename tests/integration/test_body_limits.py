"""Body limits hold on the bytes received, not only on ``Content-Length``.

A chunked upload declares no length: before, both services buffered all of it
(a 64 MiB chunked POST grew the agent by ~100 MiB). Now they stop reading at
the limit and answer 413 with a JSON body; compressed bodies get 415.
"""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from edgeloop.core.settings import PlatformSettings
from edgeloop.monitor.intake.app import create_app
from edgeloop.monitor.intake.store import IntakeStore

from ..conftest import free_port
from ..servers import serve_app
from .test_agent_http import running_agent, settings_for

CHUNK = b"[" + b" " * (256 * 1024 - 1)
TOTAL_CHUNKS = 256  # 64 MiB if nobody stops it


def chunked_post(url: str, token: str = "") -> tuple[httpx.Response | None, int]:
    """POST 64 MiB chunked; returns (response or None if cut off, bytes sent)."""
    sent = 0

    def body():
        nonlocal sent
        for _ in range(TOTAL_CHUNKS):
            sent += len(CHUNK)
            yield CHUNK

    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    try:
        return httpx.post(url, content=body(), headers=headers, timeout=60), sent
    except httpx.TransportError:  # the server answered and closed mid-upload
        return None, sent


@pytest.fixture()
def intake(tmp_path):
    settings = PlatformSettings(home=tmp_path / "home")
    settings.intake.max_body_bytes = 1 * 2**20
    store = IntakeStore.from_settings(settings)
    with serve_app(create_app(settings, store), free_port()) as url:
        yield url, store


def test_the_agent_stops_reading_a_chunked_body_at_its_limit(tmp_path):
    settings = settings_for(tmp_path)  # max_body_bytes 200,000
    with running_agent(settings) as url:
        response, sent = chunked_post(f"{url}/predict")
        assert sent < TOTAL_CHUNKS * len(CHUNK) // 4, sent
        if response is not None:
            assert response.status_code == 413
            assert "limit" in response.json()["error"]
        assert httpx.get(f"{url}/v2/health/live").status_code == 200


def test_the_intake_stops_reading_a_chunked_body_at_its_limit(intake):
    url, store = intake
    token = store.create_token("node-a")
    response, sent = chunked_post(f"{url}/v1/reports", token)
    assert sent < TOTAL_CHUNKS * len(CHUNK) // 4, sent
    if response is not None:
        assert response.status_code == 413 and "limit" in response.json()["error"]
    assert httpx.get(f"{url}/healthz").status_code == 200


@pytest.mark.parametrize("service", ["agent", "intake"])
def test_compressed_bodies_are_refused_so_nothing_inflates(service, intake, tmp_path):
    bomb = gzip.compress(
        b"[" + b"0," * (32 * 2**20) + b"0]"
    )  # 64 MiB inflated, ~64 KiB sent
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    if service == "agent":
        with running_agent(settings_for(tmp_path)) as url:
            answer = httpx.post(f"{url}/predict", content=bomb, headers=headers)
    else:
        url, store = intake
        headers["authorization"] = f"Bearer {store.create_token('node-a')}"
        answer = httpx.post(f"{url}/v1/reports", content=bomb, headers=headers)
    assert answer.status_code == 415
    assert "content-encoding 'gzip' is not accepted" in json.loads(answer.text)["error"]
