"""One node cannot flood the intake: per-node budgets, 429 + Retry-After,
and agents wait as long as they are told."""

from __future__ import annotations

import httpx
import pytest

from edgeloop.core.settings import PlatformSettings
from edgeloop.monitor.intake.app import create_app
from edgeloop.monitor.intake.quota import NodeQuota
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop_agent.outbox.forwarder import Forwarder
from edgeloop_agent.outbox.store import Outbox
from edgeloop_agent.settings import OutboxSettings

from ..conftest import free_port
from ..servers import serve_app
from ..unit.edge_agent.test_outbox import heartbeat
from .test_intake import heartbeat_report, post


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_buckets_allow_a_burst_then_pace_and_refill():
    clock = Clock()
    quota = NodeQuota(reports_per_s=2, bytes_per_s=1000, burst_s=5, clock=clock)
    assert quota.take("a", 10, 100) is None  # the whole burst
    assert quota.take("a", 4, 100) == 2  # empty: 4 reports at 2/s
    assert quota.take("b", 10, 100) is None  # another node has its own budget
    clock.now = 2.0
    assert quota.take("a", 4, 100) is None
    assert quota.take("a", 1, 10_000) == 1  # bytes: more than a burst; waits until full
    clock.now = 100.0
    assert quota.take("a", 1, 10_000) is None  # once full, an oversized batch passes


@pytest.fixture()
def intake(tmp_path):
    settings = PlatformSettings(home=tmp_path / "home")
    settings.intake.quota_reports_per_s = 0.1
    settings.intake.quota_burst_s = 50  # 5 reports, then one per 10 s
    store = IntakeStore.from_settings(settings)
    with serve_app(create_app(settings, store), free_port()) as url:
        yield url, store


def test_a_node_over_budget_gets_429_with_retry_after(intake):
    url, store = intake
    token, other = store.create_token("node-a"), store.create_token("node-b")
    batch = [heartbeat_report("node-a", f"node-a:hb:{i}") for i in range(5)]
    assert post(url, token, batch).status_code == 200
    over = post(url, token, [heartbeat_report("node-a", "node-a:hb:6")])
    assert over.status_code == 429
    assert over.headers["retry-after"] == "10"
    assert "over its report budget" in over.json()["error"]
    assert (
        post(url, other, [heartbeat_report("node-b", "node-b:hb:1")]).status_code == 200
    )


async def test_the_agent_waits_at_least_what_retry_after_says(intake, tmp_path):
    url, store = intake
    token = store.create_token("node-a")
    outbox = Outbox(tmp_path / "outbox.sqlite", "node-a")
    for n in range(6):
        outbox.put(heartbeat(n))
    settings = OutboxSettings(
        intake_url=url, token=token, batch_size=5, retry_delays_s=(0.5,), retry_jitter=0
    )
    forwarder = Forwarder(outbox, settings, node="node-a")
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {token}"}
    ) as client:
        assert await forwarder.flush_once(client)  # five within the burst
        assert not await forwarder.flush_once(client)  # the sixth: 429
    assert "HTTP 429" in forwarder.last_error
    assert forwarder._delay() >= 10  # not the 0.5 s backoff
    assert outbox.depth() == 1  # kept for later, nothing lost
    outbox.close()
