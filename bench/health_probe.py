"""``/healthz`` latency measured while the intake ingests (issue #13: p99 ≤ 50 ms).

A liveness probe that waits behind ingest gets a busy intake restarted by its
kubelet. :class:`HealthProbe` runs ``python -m bench.health_probe PORT`` as its
own process (a thread of the load generator would wait for that process's GIL
and measure it): it asks every ``interval_s`` on one keep-alive connection until
its stdin closes, then prints its latencies (ms), when each was asked
(``time.monotonic``: one clock for every process on the machine, so the load
generator keeps only the answers asked while its POSTs were in flight) and its
failure count as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from bench.child import Child, stdin_closed
from bench.load import exchange

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def probe(port: int, interval_s: float) -> dict[str, Any]:
    """Ask until stdin closes; the latencies (ms) and failures (an error or not 200)."""
    stop = stdin_closed()
    latencies: list[float] = []
    asked: list[float] = []
    failures = 0
    stream = None
    while not stop.done():
        when = time.monotonic()
        start = time.perf_counter()
        try:
            if stream is None:
                stream = await asyncio.open_connection("127.0.0.1", port)
            status, _ = await exchange(*stream, REQUEST)
            if status != 200:
                raise ConnectionError(f"HTTP {status}")
            latencies.append((time.perf_counter() - start) * 1000)
            asked.append(when)
        except (OSError, asyncio.IncompleteReadError):
            failures += 1
            if stream is not None:
                stream[1].close()
            stream = None
        await asyncio.wait([stop], timeout=interval_s)
    if stream is not None:
        stream[1].close()
    return {"latencies_ms": latencies, "asked": asked, "failures": failures}


class HealthProbe:
    """The probe process: started, then stopped for its figures."""

    def __init__(self, port: int, interval_s: float = 0.02) -> None:
        self.latencies_ms: list[float] = []
        self.asked: list[float] = []
        self.failures = 0
        self._child = Child("bench.health_probe", port, interval_s)

    def start(self) -> HealthProbe:
        self._child.start()
        return self

    def stop(self) -> None:
        """Stop asking and collect the figures (idempotent)."""
        found = self._child.stop()
        if found is not None:
            self.latencies_ms = found["latencies_ms"]
            self.asked = found["asked"]
            self.failures = found["failures"]


def by_phase(
    probe: HealthProbe, phases: list[tuple[str, float, float]]
) -> dict[str, list[float]]:
    """The latencies (ms) asked within each named stretch ``(name, start, end)``.

    Stretches of one name are pooled (the fleet onboards a thousand at a time);
    answers asked between stretches, while the load generator builds the next
    day's batches and the intake idles, are left out: they only diluted the
    tail the target is about.
    """
    found: dict[str, list[float]] = {}
    for name, start, end in phases:
        found.setdefault(name, []).extend(
            ms
            for at, ms in zip(probe.asked, probe.latencies_ms, strict=True)
            if start <= at < end
        )
    return {name: ms for name, ms in found.items() if ms}


if __name__ == "__main__":
    import uvloop

    print(json.dumps(uvloop.run(probe(int(sys.argv[1]), float(sys.argv[2])))))
