"""Durable, bounded report queue in SQLite (WAL, ``synchronous=FULL``).

A report is committed before anything tries to send it and deleted only after
the intake acknowledged it, so ``kill -9`` (or a power cut) at any moment loses
nothing; a report sent but not yet deleted is sent again with the *same* key,
and the intake deduplicates by key.

When the queue is full, space is made in this order (each step counted):

1. heartbeats other than the newest (a newer heartbeat supersedes them);
2. row samples, oldest first (Evidently can do without some);
3. raw-readings batches, oldest first (retraining loses those rows; counted);
4. drift windows of the same model version are merged pairwise, oldest first
   (counts add up, so nothing is lost but time resolution);
5. only then the oldest drift window is dropped.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from edgeloop_agent.contracts import DriftWindow, Report
from edgeloop_agent.contracts.reports import ReportBody, merge_windows

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    version TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS stats (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class Outbox:
    """Thread-safe durable queue of :class:`Report` envelopes."""

    def __init__(
        self,
        path: Path,
        node: str,
        max_reports: int = 10_000,
        max_bytes: int = 50 * 2**20,
    ) -> None:
        self.path = Path(path)
        self.node = node
        self.max_reports = max_reports
        self.max_bytes = max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def put(self, body: ReportBody) -> Report:
        """Wrap ``body`` in an envelope with a fresh idempotency key and store it."""
        report = Report(
            key=f"{self.node}:{body.kind}:{uuid.uuid4().hex}",
            node=self.node,
            created_at=datetime.now(UTC),
            body=body,
        )
        text = report.model_dump_json()
        version = getattr(body, "model_version", "")
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO reports (key, kind, version, size, body) VALUES (?, ?, ?, ?, ?)",
                (report.key, body.kind, version, len(text), text),
            )
            self._enforce_bounds()
        return report

    def peek(self, limit: int) -> list[tuple[int, str]]:
        """The oldest ``limit`` reports as (id, JSON) without removing them."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, body FROM reports ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [(int(r[0]), str(r[1])) for r in rows]

    def ack(self, ids: list[int]) -> None:
        """Delete delivered reports."""
        if not ids:
            return
        with self._lock, self._db:
            self._db.executemany(
                "DELETE FROM reports WHERE id = ?", [(i,) for i in ids]
            )

    def count_drop(self, name: str, by: int = 1) -> None:
        """Add to a named counter (persisted with the queue)."""
        with self._lock, self._db:
            self._bump(name, by)

    def depth(self) -> int:
        """Reports waiting."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM reports").fetchone()[0])

    def stats(self) -> dict[str, int]:
        """Counters: dropped_heartbeat, dropped_sample, dropped_readings, merged_drift, dropped_drift, rejected."""
        with self._lock:
            return {
                str(k): int(v)
                for k, v in self._db.execute("SELECT name, value FROM stats")
            }

    def close(self) -> None:
        """Close the database (pending reports stay on disk)."""
        with self._lock:
            self._db.close()

    def _bump(self, name: str, by: int = 1) -> None:
        self._db.execute(
            "INSERT INTO stats (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    def _full(self) -> bool:
        count, size = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM reports"
        ).fetchone()
        return bool(count > self.max_reports or size > self.max_bytes)

    def _enforce_bounds(self) -> None:
        while self._full():
            if self._drop_oldest("heartbeat", keep_newest=True):
                self._bump("dropped_heartbeat")
            elif self._drop_oldest("sample"):
                self._bump("dropped_sample")
            elif self._drop_oldest("readings"):
                self._bump("dropped_readings")
            elif self._merge_oldest_windows():
                self._bump("merged_drift")
            elif self._drop_oldest("drift"):
                self._bump("dropped_drift")
            elif self._drop_oldest("heartbeat"):
                self._bump("dropped_heartbeat")
            else:
                return

    def _drop_oldest(self, kind: str, keep_newest: bool = False) -> bool:
        rows = self._db.execute(
            "SELECT id FROM reports WHERE kind = ? ORDER BY id LIMIT 2", (kind,)
        ).fetchall()
        if not rows or (keep_newest and len(rows) < 2):
            return False
        self._db.execute("DELETE FROM reports WHERE id = ?", (rows[0][0],))
        return True

    def _merge_oldest_windows(self) -> bool:
        rows = self._db.execute(
            "SELECT a.id, a.body, b.id, b.body FROM reports a JOIN reports b "
            "ON a.kind = 'drift' AND b.kind = 'drift' AND a.version = b.version AND b.id > a.id "
            "ORDER BY a.id, b.id LIMIT 1"
        ).fetchone()
        if rows is None:
            return False
        first, second = (
            Report.model_validate_json(rows[1]),
            Report.model_validate_json(rows[3]),
        )
        assert isinstance(first.body, DriftWindow) and isinstance(
            second.body, DriftWindow
        )
        try:
            merged_body = merge_windows(
                first.body, second.body, (first.key, second.key)
            )
        except ValueError:
            return False
        merged = first.model_copy(
            update={"body": merged_body, "key": f"{self.node}:drift:{uuid.uuid4().hex}"}
        )
        text = merged.model_dump_json()
        self._db.execute("DELETE FROM reports WHERE id IN (?, ?)", (rows[0], rows[2]))
        self._db.execute(
            "INSERT INTO reports (key, kind, version, size, body) VALUES (?, 'drift', ?, ?, ?)",
            (merged.key, merged_body.model_version, len(text), text),
        )
        return True
