"""Renew the leader's lease from a thread, between ticks and during long ones.

A tick may run a local training for longer than the lease lasts; without a
renewal another replica would take the lease, see the run row still
``submitting`` and declare the run lost while it is in fact training. The
renewer keeps a live leader's lease fresh; a dead process stops renewing and
another replica takes over one TTL later, as intended.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


class LeaseKeepalive:
    """Calls ``lock.acquire()`` every ``ttl_s / 3`` seconds until stopped."""

    def __init__(self, lock: Any, ttl_s: float) -> None:
        self.lock = lock
        self.every = max(0.05, ttl_s / 3)
        self.renewals = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> LeaseKeepalive:
        """Begin renewing in a daemon thread."""
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                if self.lock.acquire():
                    self.renewals += 1
            except Exception as exc:  # noqa: BLE001 - a probe-like loop must not die
                log.warning("lease renewal failed: %s", exc)

    def stop(self) -> None:
        """Stop renewing (before the lease is released)."""
        self._stop.set()
        self._thread.join(timeout=10)
