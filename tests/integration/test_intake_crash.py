"""The intake killed (-9) mid-stream and restarted: the agent buffers and catches up.

A real `edgeloop intake serve` process and a real agent on 127.0.0.1. The
agent keeps scoring while the intake is gone; afterwards every drift window
and every uploaded reading is at the intake exactly once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from edgeloop.core.settings import PlatformSettings
from edgeloop.demo.processes import spawn_logged, wait_http
from edgeloop.monitor.intake import collect
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop_agent.api.app import create_app as create_agent

from ..conftest import free_port
from ..servers import serve_app
from .test_agent_http import SENSORS, activate, settings_for, wait_for

pytestmark = pytest.mark.slow


def _intake(home: Path, port: int) -> subprocess.Popen[bytes]:
    proc = spawn_logged(
        [
            str(Path(sys.executable).with_name("edgeloop")),
            "intake",
            "serve",
            "--port",
            str(port),
        ],
        home / "intake.log",
        "ab",
        env={**os.environ, "EDGELOOP_HOME": str(home)},
    )
    wait_http(f"http://127.0.0.1:{port}/healthz", proc, "intake", home / "intake.log")
    return proc


def test_intake_killed_mid_stream_loses_and_duplicates_nothing(
    registry_with_champion, tmp_path
):
    home = tmp_path / "home"
    home.mkdir()
    platform = PlatformSettings(home=home)
    store = IntakeStore.from_settings(platform)
    token = store.create_token("node-a")
    port = free_port()
    intake = _intake(home, port)

    bundle = tmp_path / "bundle"
    shutil.copytree(registry_with_champion["run"].bundle_dir, bundle)
    settings = settings_for(tmp_path / "agent", f"http://127.0.0.1:{port}")
    settings.outbox.token = token
    settings.outbox.upload_readings = True
    first = datetime(2026, 7, 1, tzinfo=UTC)

    def post(client: httpx.Client, url: str, batch: int) -> None:
        readings = [
            {
                "entity": f"p{i % 4}",
                "values": SENSORS,
                "timestamp": (
                    first + timedelta(minutes=10 * (batch * 20 + i))
                ).isoformat(),
            }
            for i in range(20)
        ]
        assert (
            client.post(f"{url}/predict", json={"readings": readings}).status_code
            == 200
        )

    try:
        with serve_app(create_agent(settings), free_port(), lifespan="on") as agent:
            activate(agent, settings, bundle)
            with httpx.Client(timeout=30) as client:
                for batch in range(3):
                    post(client, agent, batch)
                wait_for(lambda: store.count("drift") >= 1, what="first windows")
                intake.send_signal(signal.SIGKILL)  # mid-stream, no goodbye
                intake.wait(timeout=10)
                for batch in range(3, 10):  # the agent keeps scoring, offline
                    post(client, agent, batch)
                intake = _intake(home, port)
                wait_for(
                    lambda: (
                        store.count("drift") >= 10 and store.count("readings") >= 10
                    ),
                    timeout=60,
                    what="the backlog at the restarted intake",
                )
    finally:
        intake.terminate()
        intake.wait(timeout=15)

    # 200 readings in windows of 20: ten windows and ten readings batches, each once
    assert store.count("drift", node="node-a") == 10
    rows = collect.load(
        collect.partitions(platform.collect_root(), "readings", "pump-failure")
    )
    assert len(rows) == 200 and not rows.duplicated(["pump_id", "timestamp"]).any()
