"""``/healthz`` latency measured while the intake ingests (issue #13: p99 ≤ 50 ms).

A liveness probe that waits behind ingest gets a busy intake restarted by its
kubelet. :class:`HealthProbe` runs ``python -m bench.health_probe PORT`` as its
own process (a thread of the load generator would wait for that process's GIL
and measure it): it asks every ``interval_s`` on one keep-alive connection until
its stdin closes, then prints its latencies (ms) and failure count as JSON.
"""

from __future__ import annotations

import json
import select
import socket
import sys
import time
from typing import Any

from bench.child import Child

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _ask(sock: socket.socket) -> None:
    """One request and its whole answer on ``sock``."""
    sock.sendall(REQUEST)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        body += chunk


def probe(port: int, interval_s: float) -> dict[str, Any]:
    """Ask until stdin closes; the latencies (ms) and failures."""
    latencies: list[float] = []
    failures = 0
    sock: socket.socket | None = None
    while True:
        start = time.perf_counter()
        try:
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            _ask(sock)
            latencies.append((time.perf_counter() - start) * 1000)
        except OSError:
            failures += 1
            if sock is not None:
                sock.close()
            sock = None
        if select.select([sys.stdin], [], [], interval_s)[0]:
            break  # stdin closed (or written to): stop
    return {"latencies_ms": latencies, "failures": failures}


class HealthProbe:
    """The probe process: started, then stopped for its figures."""

    def __init__(self, port: int, interval_s: float = 0.02) -> None:
        self.latencies_ms: list[float] = []
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
            self.failures = found["failures"]


if __name__ == "__main__":
    print(json.dumps(probe(int(sys.argv[1]), float(sys.argv[2]))))
