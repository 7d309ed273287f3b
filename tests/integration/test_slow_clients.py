"""Slow clients cannot hold the services: headers and bodies have deadlines.

Before: 300 half-open connections were held for 50 s with no timeout. The
services run here as users run them (``edgeloop-agent serve``, ``edgeloop
intake serve``), with 1 s deadlines so the test need not wait long.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeloop.core.settings import PlatformSettings
from edgeloop.demo.processes import spawn_logged, wait_http
from edgeloop.monitor.intake.store import IntakeStore

from ..conftest import free_port

BIN = Path(sys.executable).parent


def _serve(
    cmd: list[str], env: dict[str, str], health: str, log: Path
) -> Iterator[int]:
    proc = spawn_logged(cmd, log, env={**os.environ, **env})
    try:
        wait_http(health, proc, cmd[0], log, 30)
        yield int(health.split(":")[2].split("/")[0])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(params=["agent", "intake"])
def service(request, tmp_path) -> Iterator[tuple[int, str, str]]:
    port, token = free_port(), "none"
    if request.param == "agent":
        env = {
            "EDGELOOP_AGENT_SERVER__PORT": str(port),
            "EDGELOOP_AGENT_SERVER__HEADER_TIMEOUT_S": "1",
            "EDGELOOP_AGENT_SERVER__BODY_TIMEOUT_S": "1",
            "EDGELOOP_AGENT_MODEL__DESIRED_MODEL_PATH": str(tmp_path / "desired.json"),
            "EDGELOOP_AGENT_MODEL__CACHE_DIR": str(tmp_path / "cache"),
            "EDGELOOP_AGENT_OUTBOX__PATH": str(tmp_path / "outbox.sqlite"),
        }
        cmd = [str(BIN / "edgeloop-agent"), "serve"]
        health, path = f"http://127.0.0.1:{port}/v2/health/live", "/predict"
    else:
        env = {
            "EDGELOOP_HOME": str(tmp_path / "home"),
            "EDGELOOP_INTAKE__HEADER_TIMEOUT_S": "1",
            "EDGELOOP_INTAKE__BODY_TIMEOUT_S": "1",
        }
        cmd = [str(BIN / "edgeloop"), "intake", "serve", "--port", str(port)]
        settings = PlatformSettings(home=tmp_path / "home")
        token = IntakeStore.from_settings(settings).create_token("node-a")
        health, path = f"http://127.0.0.1:{port}/healthz", "/v1/reports"
    for port in _serve(cmd, env, health, tmp_path / "service.log"):
        yield port, path, token


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(20)  # an upper bound for the test, far above the 1 s deadline
    return sock


def test_half_open_connections_are_closed(service):
    port, path, _ = service
    socks = [_connect(port) for _ in range(30)]
    try:
        for sock in socks:
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nX-Slow: ".encode())
        for sock in socks:  # the server hangs up: EOF, not a recv timeout
            assert sock.recv(1024) == b""
    finally:
        for sock in socks:
            sock.close()


def test_a_body_that_stops_arriving_gets_408(service):
    port, path, token = service
    with _connect(port) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: 100\r\n\r\n".encode()
            + b'{"a":'
        )
        answer = b""
        while chunk := sock.recv(4096):  # until the server closes (connection: close)
            answer += chunk
        answer = answer.decode()
    assert answer.startswith("HTTP/1.1 408"), answer
    assert "no data for 1 s" in answer
