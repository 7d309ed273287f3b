"""Retry delays from the settings' schedule, spread by random jitter.

Thousands of gateways lose the same uplink (or the intake restarts) at once;
without jitter they all retry on the same schedule and hit the intake in
lock-step. Each delay is the schedule's value plus a random share of it, drawn
by tenacity's own wait strategies (``wait_chain`` of ``wait_fixed +
wait_random``) so the backoff logic is a library's, not ours.
"""

from __future__ import annotations

from collections.abc import Sequence

from tenacity import RetryCallState, wait_chain, wait_fixed, wait_random


class Backoff:
    """Delay before the next attempt after ``failures`` failures in a row."""

    def __init__(self, delays: Sequence[float], jitter: float) -> None:
        schedule = tuple(delays) or (1.0,)
        self._wait = wait_chain(
            *(wait_fixed(d) + wait_random(0, d * jitter) for d in schedule)
        )

    def delay(self, failures: int) -> float:
        """Seconds to wait; the schedule's last delay repeats past its end."""
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = max(1, failures)
        return float(self._wait(state))
