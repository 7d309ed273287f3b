"""While the intake is down, the forwarder waits its whole backoff: new reports do not cut it short."""

import asyncio
import socket

from edgeloop_agent.outbox.forwarder import Forwarder
from edgeloop_agent.outbox.store import Outbox
from edgeloop_agent.settings import OutboxSettings

from .test_outbox import heartbeat


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once it is closed


async def test_new_reports_do_not_cut_the_backoff_short(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite", "node-a")
    settings = OutboxSettings(
        intake_url=f"http://127.0.0.1:{_closed_port()}",
        retry_delays_s=(3.0,),
        retry_jitter=0,
        flush_interval_s=0.05,
    )
    forwarder = Forwarder(outbox, settings, node="node-a")
    attempts = 0
    original = forwarder.flush_once

    async def counting(client):
        nonlocal attempts
        attempts += 1
        return await original(client)

    forwarder.flush_once = counting  # type: ignore[method-assign]
    outbox.put(heartbeat())
    task = asyncio.create_task(forwarder.run())
    try:
        while attempts == 0:
            await asyncio.sleep(0.01)
        # ten new reports during the 3 s backoff (the agent wakes the
        # forwarder for each): no attempt until the backoff has run out
        for n in range(10):
            await asyncio.sleep(0.05)
            outbox.put(heartbeat(n))
            forwarder.wake()
        assert attempts == 1
        assert "ConnectError" in forwarder.last_error
        while attempts < 2:  # then it tries again (the test's timeout bounds this)
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        outbox.close()
