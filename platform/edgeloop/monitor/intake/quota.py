"""Per-node budgets: a token bucket for reports and one for bytes.

One token (one node's credentials, maybe stolen) could grow storage by 126 MiB
in 4 s; the chart's 5 GiB volume would fill in minutes. Each node may send
``reports_per_s`` reports and ``bytes_per_s`` bytes on average, with bursts of
``burst_s`` seconds' worth (an agent catching up after days offline is paced,
not refused). Over budget, the intake answers 429 with ``Retry-After``, which
agents honour. Budgets live in this replica's memory: N replicas allow N
times the rate, which is still bounded.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    level: float
    updated: float


@dataclass
class NodeQuota:
    """Token buckets per node: ``take`` answers None (go) or seconds to wait."""

    reports_per_s: float
    bytes_per_s: float
    burst_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, node: str, reports: int, size: int) -> float | None:
        """Spend ``reports`` and ``size`` from the node's budgets, or say how long to wait."""
        now = self.clock()
        with self._lock:
            needs = (
                ("reports", reports, self.reports_per_s),
                ("bytes", size, self.bytes_per_s),
            )
            wait = 0.0
            for kind, cost, rate in needs:
                bucket = self._refill(node, kind, rate, now)
                if cost > bucket.level:
                    capacity = rate * self.burst_s
                    if cost > capacity:  # could never fit: let it through at full cost
                        wait = max(wait, (capacity - bucket.level) / rate)
                    else:
                        wait = max(wait, (cost - bucket.level) / rate)
            if wait > 0:
                return max(1.0, math.ceil(wait))
            for kind, cost, _ in needs:
                self._buckets[(node, kind)].level -= cost
            return None

    def _refill(self, node: str, kind: str, rate: float, now: float) -> _Bucket:
        capacity = rate * self.burst_s
        bucket = self._buckets.get((node, kind))
        if bucket is None:
            bucket = self._buckets[(node, kind)] = _Bucket(capacity, now)
        bucket.level = min(capacity, bucket.level + (now - bucket.updated) * rate)
        bucket.updated = now
        return bucket
