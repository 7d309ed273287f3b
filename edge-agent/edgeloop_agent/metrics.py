"""Prometheus text exposition for the agent, without a client library.

A handful of counters, gauges and one latency histogram; writing them by hand
keeps the edge image free of another dependency and costs one lock per request.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import deque

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    """Thread-safe counters, gauges and a request-latency histogram."""

    def __init__(self, window: int = 2048) -> None:
        self._lock = threading.Lock()
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.gauges: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._buckets = [0] * (len(LATENCY_BUCKETS_S) + 1)
        self._sum = 0.0
        self._count = 0
        self._recent: deque[float] = deque(maxlen=window)

    def inc(self, name: str, by: float = 1.0, **labels: str) -> None:
        """Add to a counter."""
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self.counters[key] = self.counters.get(key, 0.0) + by

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a gauge."""
        with self._lock:
            self.gauges[(name, tuple(sorted(labels.items())))] = value

    def observe_latency(self, seconds: float) -> None:
        """Record one request's latency."""
        with self._lock:
            self._buckets[bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
            self._sum += seconds
            self._count += 1
            self._recent.append(seconds)

    def percentiles(self) -> tuple[float | None, float | None]:
        """p50 and p99 in milliseconds over the most recent requests."""
        with self._lock:
            recent = sorted(self._recent)
        if not recent:
            return None, None

        def pick(q: float) -> float:
            return round(recent[min(len(recent) - 1, int(q * len(recent)))] * 1000, 4)

        return pick(0.5), pick(0.99)

    def counter(self, name: str, **labels: str) -> float:
        """Current value of a counter (0 when never incremented)."""
        with self._lock:
            return self.counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def render(self) -> str:
        """The text exposition format (version 0.0.4)."""
        lines: list[str] = []
        with self._lock:
            for kind, store in (("counter", self.counters), ("gauge", self.gauges)):
                seen: set[str] = set()
                for (name, labels), value in sorted(store.items()):
                    if name not in seen:
                        lines.append(f"# TYPE {name} {kind}")
                        seen.add(name)
                    lines.append(f"{name}{_labels(labels)} {value:g}")
            lines.append("# TYPE edgeloop_request_seconds histogram")
            total = 0
            for bound, count in zip(
                (*LATENCY_BUCKETS_S, float("inf")), self._buckets, strict=True
            ):
                total += count
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                lines.append(f'edgeloop_request_seconds_bucket{{le="{le}"}} {total}')
            lines.append(f"edgeloop_request_seconds_sum {self._sum:g}")
            lines.append(f"edgeloop_request_seconds_count {self._count}")
        return "\n".join(lines) + "\n"


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
