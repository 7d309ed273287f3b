"""One node flooding the intake while the fleet ingests (issue #13, "Bad input").

``python -m bench.flood PORT TOKEN BODY_FILE CONNECTIONS``: the node's token
posts the same batch on ``CONNECTIONS`` keep-alive connections as fast as
answers come, until its stdin closes; then prints how many answers of each
status it got as JSON. Its own process, so the fleet's load generator and this
flood do not share an interpreter.

``bench.fleet`` raises the intake's per-node budgets (its simulated days last
seconds, so real-time budgets would refuse the fleet itself): the flood meets
no 429 there and is the unthrottled worst case, what the intake's admission
gate alone (one POST per token at a time) does for the other nodes. The budgets themselves are tested in
``tests/integration/test_intake_quota.py``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from pathlib import Path

from bench.child import Child, stdin_closed
from bench.load import exchange


async def flood(port: int, token: str, body: bytes, connections: int) -> Counter[int]:
    """POST ``body`` with ``token`` until stdin closes; answers by status."""
    raw = (
        f"POST /v1/reports HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    statuses: Counter[int] = Counter()
    stop = stdin_closed()

    async def worker() -> None:
        stream = await asyncio.open_connection("127.0.0.1", port)
        while not stop.done():
            try:
                status, _ = await exchange(*stream, raw)
            except (OSError, asyncio.IncompleteReadError):
                statuses[0] += 1  # connection dropped: open another
                stream = await asyncio.open_connection("127.0.0.1", port)
                continue
            statuses[status] += 1
        stream[1].close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return statuses


class Flood:
    """The flooding process: started, then stopped for its answers by status."""

    def __init__(
        self, port: int, token: str, body: Path, connections: int = 16
    ) -> None:
        self.statuses: dict[int, int] = {}
        self._child = Child("bench.flood", port, token, body, connections)

    def start(self) -> Flood:
        self._child.start()
        return self

    def stop(self) -> None:
        """Stop flooding and collect the answers (idempotent)."""
        found = self._child.stop()
        if found is not None:
            self.statuses = {int(k): v for k, v in found.items()}


if __name__ == "__main__":
    import uvloop

    port, token, body_file, connections = sys.argv[1:5]
    found = uvloop.run(
        flood(int(port), token, Path(body_file).read_bytes(), int(connections))
    )
    print(json.dumps(found))
