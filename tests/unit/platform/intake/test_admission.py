"""The intake's admission gate, driven as the ASGI middleware it is."""

from __future__ import annotations

import asyncio
from typing import Any

from edgeloop.monitor.intake.app import Admission


def _post(token: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/v1/reports",
        "headers": [(b"authorization", b"Bearer " + token)],
    }


async def _run_flood() -> tuple[list[str], int, dict[str, Any]]:
    """Three POSTs from token a, one from b, one health check; a's first held."""
    release = asyncio.Event()
    inside: list[str] = []

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        who = dict(scope["headers"]).get(b"authorization", b"-").decode()
        inside.append(f"{scope['path']} {who}")
        if len(inside) == 1:
            await release.wait()

    gate = Admission(inner, limit=2, per_token=1)
    first = asyncio.create_task(gate(_post(b"a"), None, None))
    await asyncio.sleep(0)
    queued = [asyncio.create_task(gate(_post(b"a"), None, None)) for _ in range(2)]
    other = asyncio.create_task(gate(_post(b"b"), None, None))
    health = {"type": "http", "method": "GET", "path": "/healthz", "headers": []}
    await gate(health, None, None)
    await other
    seen_while_held = list(inside)
    waiting = gate.token_gates["Bearer a"].users
    release.set()
    await asyncio.gather(first, *queued)
    return seen_while_held, waiting, gate.token_gates


def test_a_token_waits_behind_its_own_post_and_leaves_nothing_behind():
    seen_while_held, waiting, gates_after = asyncio.run(_run_flood())
    # a's second and third wait; b and the health check pass a's held POST
    assert sorted(seen_while_held) == [
        "/healthz -",
        "/v1/reports Bearer a",
        "/v1/reports Bearer b",
    ]
    assert waiting == 3  # the held one and its two queued
    assert gates_after == {}  # no per-token state once a token has no POSTs
