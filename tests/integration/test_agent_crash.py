"""kill -9 an agent process mid-flush: nothing lost, nothing duplicated after dedup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from edgeloop.demo.processes import spawn_logged
from edgeloop_agent.contracts import DesiredModel, bundle_digest

from ..conftest import free_port
from ..metrics_text import metric
from ..receiver import Received, receiver_app
from ..servers import serve_app
from .test_agent_http import SENSORS, wait_for

pytestmark = pytest.mark.slow


def start_agent(
    tmp: Path, port: int, intake: str, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "EDGELOOP_AGENT_NODE__ID": "node-k",
        "EDGELOOP_AGENT_NODE__SITE": "delta-04",
        "EDGELOOP_AGENT_MODEL__DESIRED_MODEL_PATH": str(tmp / "desired.json"),
        "EDGELOOP_AGENT_MODEL__CACHE_DIR": str(tmp / "cache"),
        "EDGELOOP_AGENT_MODEL__POLL_INTERVAL_S": "0.1",
        "EDGELOOP_AGENT_OUTBOX__PATH": str(tmp / "outbox.sqlite"),
        "EDGELOOP_AGENT_OUTBOX__INTAKE_URL": intake,
        "EDGELOOP_AGENT_OUTBOX__TOKEN": "t",
        "EDGELOOP_AGENT_OUTBOX__BATCH_SIZE": "4",
        "EDGELOOP_AGENT_OUTBOX__RETRY_DELAYS_S": "[0.1]",
        "EDGELOOP_AGENT_OUTBOX__FLUSH_INTERVAL_S": "0.1",
        "EDGELOOP_AGENT_OUTBOX__HEARTBEAT_INTERVAL_S": "3600",
        "EDGELOOP_AGENT_DRIFT__WINDOW_READINGS": "5",
        "EDGELOOP_AGENT_DRIFT__SAMPLE_SIZE": "2",
    }
    agent = Path(sys.executable).with_name("edgeloop-agent")
    return spawn_logged(
        [str(agent), "serve", "--port", str(port), "--log-level", "warning"],
        log,
        "ab",
        env=env,
    )


def test_kill_dash_nine_mid_flush_loses_and_duplicates_nothing(
    registry_with_champion, tmp_path
):
    bundle = registry_with_champion["run"].bundle_dir
    (tmp_path / "desired.json").write_text(
        DesiredModel(
            model_name="pump-failure",
            version="1",
            bundle_uri=str(bundle),
            bundle_sha256=bundle_digest(bundle),
        ).model_dump_json()
    )
    state = Received(fail_with=503)
    with serve_app(receiver_app(state), free_port()) as intake:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = tmp_path / "agent.log"
        agent = start_agent(tmp_path, port, intake, log)
        try:
            wait_for(lambda: _ready(url), timeout=60, what="agent ready")
            for start in range(0, 60, 10):
                batch = [
                    {"entity": f"p{i % 3}", "values": SENSORS}
                    for i in range(start, start + 10)
                ]
                assert (
                    httpx.post(f"{url}/predict", json={"readings": batch}).status_code
                    == 200
                )
            # 60 readings, windows of 5: 12 drift windows + 12 samples queued while the intake is down.
            state.delay_s, state.fail_with = 5.0, None
            wait_for(lambda: state.deliveries >= 1, what="first delivery")
            agent.send_signal(
                signal.SIGKILL
            )  # batch recorded by the intake, not yet acknowledged
            agent.wait(timeout=10)
        finally:
            if agent.poll() is None:
                agent.kill()
        assert len(state.reports) < 24
        state.delay_s = 0.0
        agent = start_agent(tmp_path, port, intake, log)
        try:
            wait_for(
                lambda: (
                    (state.kinds().get("drift"), state.kinds().get("sample"))
                    == (12, 12)
                ),
                timeout=60,
                what="all reports",
            )
            wait_for(
                lambda: (
                    metric(httpx.get(f"{url}/metrics").text, "edgeloop_outbox_depth")
                    == 0
                ),
                what="empty outbox",
            )
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=20)
    assert state.duplicates >= 1, "the in-flight batch should have been delivered again"
    drift = [r["body"] for r in state.reports.values() if r["body"]["kind"] == "drift"]
    assert sum(w["rows"] for w in drift) == 60


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        time.sleep(0.1)
        return False
