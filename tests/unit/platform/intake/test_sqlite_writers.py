"""Batches taken at once on SQLite wait their turn instead of failing.

The intake stores batches in the threadpool, so several are stored at once;
SQLite has one writer, and a transaction that waited longer than its busy
timeout (5 s by default) failed with "database is locked", answered 503. Seen
with 64 agents posting at once to one intake (``bench.fleet``).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from edgeloop.monitor.intake.store import IntakeStore
from edgeloop_agent.contracts import Heartbeat, Report


def _beat(node: str) -> Report:
    body = Heartbeat(site="s1", requests=1, errors=0, outbox_depth=0, uptime_s=1)
    return Report(
        key=f"{node}:hb:1", node=node, created_at=datetime.now(UTC), body=body
    )


class _SlowCommit(IntakeStore):
    """The first batch's transaction stays open until released."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.inside = threading.Event()
        self.release = threading.Event()

    def _update_node(self, conn, node, items, now):  # inside the open transaction
        if node == "slow":
            self.inside.set()
            self.release.wait(60)
        super()._update_node(conn, node, items, now)


def test_a_batch_waits_for_a_long_transaction_instead_of_failing(tmp_path) -> None:
    store = _SlowCommit(f"sqlite:///{tmp_path / 'intake.db'}")
    results: dict[str, object] = {}

    def accept(node: str) -> None:
        try:
            results[node] = store.accept([_beat(node)])
        except Exception as exc:  # noqa: BLE001 - what the test is about
            results[node] = exc

    slow = threading.Thread(target=accept, args=("slow",))
    slow.start()
    assert store.inside.wait(30)
    other = threading.Thread(target=accept, args=("other",))
    other.start()
    time.sleep(6)  # longer than SQLite's default busy timeout
    store.release.set()
    slow.join(60)
    other.join(60)
    assert results == {"slow": (1, 0), "other": (1, 0)}
    assert store.count("heartbeat") == 2
