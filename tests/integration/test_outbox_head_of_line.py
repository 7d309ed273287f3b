"""One report the intake will never take does not block the queue behind it.

Before: a 10,000-row /predict with ``upload_readings`` became one 4.5 MiB
report; the intake answered 413 and the forwarder retried it forever while
heartbeats and drift windows queued behind it.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx
import pandas as pd
import pytest

from edgeloop.core.settings import PlatformSettings
from edgeloop.monitor.intake.app import create_app
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop_agent.contracts import ReadingsBatch
from edgeloop_agent.outbox.forwarder import Forwarder
from edgeloop_agent.outbox.store import Outbox
from edgeloop_agent.settings import OutboxSettings

from ..conftest import free_port
from ..metrics_text import metric
from ..receiver import Received, receiver_app
from ..servers import serve_app
from ..unit.edge_agent.test_outbox import heartbeat, sample
from .test_agent_http import (
    SENSORS,
    activate,
    running_agent,
    settings_for,
    source_bundle,
)

__all__ = ["source_bundle"]  # the fixture, used by name


def readings(rows: int) -> ReadingsBatch:
    now = datetime.now(UTC)
    return ReadingsBatch(
        site="offshore-01",
        model_name="pump-failure",
        model_version="1",
        columns=tuple(SENSORS),
        entities=tuple(f"p{i % 40}" for i in range(rows)),
        timestamps=(now,) * rows,
        rows=(tuple(SENSORS.values()),) * rows,
        scores=(0.25,) * rows,
        alarms=(False,) * rows,
    )


@pytest.fixture()
def intake(tmp_path):
    settings = PlatformSettings(home=tmp_path / "home")
    store = IntakeStore.from_settings(settings)
    with serve_app(create_app(settings, store), free_port()) as url:
        yield url, store, settings


async def drain(forwarder: Forwarder, rounds: int = 50) -> None:
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {forwarder.settings.token}"}
    ) as client:
        for _ in range(rounds):
            if not forwarder.outbox.depth():
                return
            await forwarder.flush_once(client)


def test_a_10000_row_predict_reaches_the_intake_in_reports_under_its_limit(
    intake, source_bundle, tmp_path
):
    url, store, settings = intake
    agent = settings_for(tmp_path, url)
    agent.scoring.max_batch_rows = 10_000
    agent.scoring.max_body_bytes = 8 * 2**20
    agent.outbox.upload_readings = True
    agent.outbox.token = store.create_token("node-a")
    with running_agent(agent) as agent_url:
        activate(agent_url, agent, source_bundle)
        rows = [{"entity": f"p{i % 50}", "values": SENSORS} for i in range(10_000)]
        answer = httpx.post(f"{agent_url}/predict", json={"readings": rows}, timeout=60)
        assert answer.status_code == 200, answer.text
        events = {}
        for _ in range(600):
            text = httpx.get(f"{agent_url}/metrics").text
            if metric(text, "edgeloop_outbox_depth") == 0 and store.fleet():
                events = text
                break
            time.sleep(0.1)
    assert 'event="split_readings"' in events
    parts = sorted(settings.collect_root().glob("readings/**/*.parquet"))
    assert len(parts) >= 2  # ~1.2 MB of readings, split under the 1 MiB default
    assert sum(len(pd.read_parquet(p)) for p in parts) == 10_000


@pytest.fixture()
def small_intake(tmp_path):
    """An intake taking at most 1 MiB per POST."""
    settings = PlatformSettings(home=tmp_path / "small")
    settings.intake.max_body_bytes = 2**20
    store = IntakeStore.from_settings(settings)
    with serve_app(create_app(settings, store), free_port()) as url:
        yield url, store, settings


async def test_a_report_too_large_for_the_intake_is_set_aside_and_the_rest_flows(
    small_intake, tmp_path
):
    url, store, settings = small_intake
    outbox = Outbox(tmp_path / "outbox.sqlite", "node-a", max_report_bytes=64 * 2**20)
    outbox.put(readings(20_000))  # ~2.4 MB: more than the intake's 1 MiB
    for n in range(3):
        outbox.put(heartbeat(n))
    forwarder = Forwarder(
        outbox,
        OutboxSettings(intake_url=url, token=store.create_token("node-a")),
        node="node-a",
    )
    await drain(forwarder)
    assert outbox.depth() == 0, forwarder.last_error
    (dead,) = outbox.dead_letters()
    assert dead["kind"] == "readings" and dead["reason"].startswith("HTTP 413")
    assert outbox.stats()["dead_lettered"] == 1
    assert [v.node for v in store.fleet()] == ["node-a"]  # the heartbeats arrived
    # learned: the next big batch is split under half the refused size
    assert outbox.max_report_bytes < 2**20
    outbox.put(readings(20_000))
    await drain(forwarder)
    assert outbox.depth() == 0 and len(outbox.dead_letters()) == 1
    reopened = Outbox(tmp_path / "outbox.sqlite", "node-a", max_report_bytes=64 * 2**20)
    assert reopened.max_report_bytes == outbox.max_report_bytes  # persisted
    hb = reopened.stats()
    assert hb["split_readings"] >= 2
    outbox.close()
    reopened.close()


async def test_a_report_that_crashes_the_intake_is_bisected_out_after_n_500s(tmp_path):
    state = Received(poison_marker="node-a:sample:")
    with serve_app(receiver_app(state), free_port()) as url:
        outbox = Outbox(tmp_path / "outbox.sqlite", "node-a")
        for n in range(3):
            outbox.put(heartbeat(n))
        outbox.put(sample())
        for n in range(3, 6):
            outbox.put(heartbeat(n))
        settings = OutboxSettings(intake_url=url, token="t", poison_after=3)
        forwarder = Forwarder(outbox, settings, node="node-a")
        await drain(forwarder, rounds=100)
    assert outbox.depth() == 0
    (dead,) = outbox.dead_letters()
    assert dead["kind"] == "sample" and dead["reason"].startswith("HTTP 500 3 times")
    assert state.kinds() == {"heartbeat": 6}


async def test_reports_the_intake_could_not_store_become_dead_letters(intake, tmp_path):
    """The intake answers 200 but lists a report in ``rejected``: the agent keeps it."""
    url, store, settings = intake
    blocked = settings.collect_root() / "readings" / "model=pump-failure"
    blocked.mkdir(parents=True)
    (blocked / "site=offshore-01").write_text("not a directory")
    outbox = Outbox(tmp_path / "outbox.sqlite", "node-a")
    outbox.put(readings(10))
    outbox.put(heartbeat(1))
    forwarder = Forwarder(
        outbox,
        OutboxSettings(intake_url=url, token=store.create_token("node-a")),
        node="node-a",
    )
    await drain(forwarder)
    (dead,) = outbox.dead_letters()
    assert dead["kind"] == "readings" and "NotADirectoryError" in dead["reason"]
    assert json.loads(json.dumps(outbox.stats()))["dead_lettered"] == 1
    outbox.close()
