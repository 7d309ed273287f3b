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

from edgeloop_agent.contracts import DriftWindow, ReadingsBatch, Report
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
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    failed_at TEXT NOT NULL,
    body TEXT NOT NULL
);
"""
LEARNED_LIMIT = "learned_max_report_bytes"
"""Stats row: the report size limit learned from an intake's 413."""


class Outbox:
    """Thread-safe durable queue of :class:`Report` envelopes."""

    def __init__(
        self,
        path: Path,
        node: str,
        max_reports: int = 10_000,
        max_bytes: int = 50 * 2**20,
        max_report_bytes: int = 1 * 2**20,
        max_dead_letters: int = 1_000,
    ) -> None:
        self.path = Path(path)
        self.node = node
        self.max_reports = max_reports
        self.max_bytes = max_bytes
        self.max_dead_letters = max_dead_letters
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute(
            "SELECT value FROM stats WHERE name = ?", (LEARNED_LIMIT,)
        ).fetchone()
        learned = int(row[0]) if row else 0
        self.max_report_bytes = min(max_report_bytes, learned or max_report_bytes)

    def put(self, body: ReportBody, *more: ReportBody) -> Report:
        """Wrap each body in an envelope with a fresh idempotency key and store them.

        All in one transaction (one ``fsync``: a drift window and its row
        sample cost one commit, not two, on the serving thread). A readings
        batch whose report would exceed ``max_report_bytes`` is stored as
        several reports (split by rows), so no single report can be too large
        for the intake and block the queue behind it. Returns the first report.
        """
        reports = [
            self._envelope(part) for each in (body, *more) for part in self._split(each)
        ]
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for report, text in reports:
                self._db.execute(
                    "INSERT INTO reports (key, kind, version, size, body) VALUES (?, ?, ?, ?, ?)",
                    (
                        report.key,
                        report.body.kind,
                        getattr(report.body, "model_version", ""),
                        len(text),
                        text,
                    ),
                )
            if len(reports) > 1 + len(more):
                self._bump("split_readings", len(reports) - 1 - len(more))
            self._enforce_bounds()
        return reports[0][0]

    def _envelope(self, body: ReportBody) -> tuple[Report, str]:
        report = Report(
            key=f"{self.node}:{body.kind}:{uuid.uuid4().hex}",
            node=self.node,
            created_at=datetime.now(UTC),
            body=body,
        )
        return report, report.model_dump_json()

    def _split(self, body: ReportBody) -> list[ReportBody]:
        """``body`` in parts under ``max_report_bytes`` (only readings split)."""
        if not isinstance(body, ReadingsBatch) or len(body.rows) < 2:
            return [body]
        size = len(body.model_dump_json())
        if size <= self.max_report_bytes:
            return [body]
        parts = -(-size // int(self.max_report_bytes * 0.9))  # ceil, 10 % headroom
        step = max(1, -(-len(body.rows) // parts))
        out: list[ReportBody] = []
        for start in range(0, len(body.rows), step):
            piece = _rows(body, start, start + step)
            out.extend(self._split(piece) if step > 1 else [piece])
        return out

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

    def dead_letter(self, report_id: int, reason: str) -> None:
        """Move a report the intake will never take out of the queue.

        It is kept for inspection (:meth:`dead_letters`) and counted; the
        oldest dead letters beyond ``max_dead_letters`` are deleted (counted too).
        """
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO dead_letters (key, kind, reason, failed_at, body) "
                "SELECT key, kind, ?, ?, body FROM reports WHERE id = ?",
                (reason[:500], datetime.now(UTC).isoformat(), report_id),
            )
            self._db.execute("DELETE FROM reports WHERE id = ?", (report_id,))
            self._bump("dead_lettered")
            excess = (
                self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
                - self.max_dead_letters
            )
            if excess > 0:
                self._db.execute(
                    "DELETE FROM dead_letters WHERE id IN "
                    "(SELECT id FROM dead_letters ORDER BY id LIMIT ?)",
                    (excess,),
                )
                self._bump("dead_letters_deleted", excess)

    def dead_letters(self) -> list[dict[str, str]]:
        """Dead letters, oldest first: key, kind, reason, failed_at (no bodies)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, kind, reason, failed_at FROM dead_letters ORDER BY id"
            ).fetchall()
        return [
            {"key": r[0], "kind": r[1], "reason": r[2], "failed_at": r[3]} for r in rows
        ]

    def learn_limit(self, rejected_size: int) -> int:
        """Lower the report size limit after an intake refused one as too large.

        Later readings split at half the refused size (never below 16 KiB);
        the limit is persisted, so a restart does not forget it.
        """
        limit = max(16 * 2**10, rejected_size // 2)
        with self._lock, self._db:
            if limit < self.max_report_bytes:
                self.max_report_bytes = limit
                self._db.execute(
                    "INSERT INTO stats (name, value) VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    (LEARNED_LIMIT, limit),
                )
        return self.max_report_bytes

    def count_drop(self, name: str, by: int = 1) -> None:
        """Add to a named counter (persisted with the queue)."""
        with self._lock, self._db:
            self._bump(name, by)

    def depth(self) -> int:
        """Reports waiting."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM reports").fetchone()[0])

    def oldest_created(self) -> datetime | None:
        """When the oldest waiting report was created (``None`` when empty)."""
        with self._lock:
            row = self._db.execute(
                "SELECT json_extract(body, '$.created_at') FROM reports ORDER BY id LIMIT 1"
            ).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def stats(self) -> dict[str, int]:
        """Counters by name (``dropped_*``, ``merged_drift``, ``split_readings``, ``dead_*``)."""
        with self._lock:
            return {
                str(k): int(v)
                for k, v in self._db.execute(
                    "SELECT name, value FROM stats WHERE name != ?", (LEARNED_LIMIT,)
                )
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


def _rows(body: ReadingsBatch, start: int, stop: int) -> ReadingsBatch:
    """Rows ``start:stop`` of a readings batch, everything else kept."""
    return body.model_copy(
        update={
            "entities": body.entities[start:stop],
            "timestamps": body.timestamps[start:stop],
            "rows": body.rows[start:stop],
            "scores": body.scores[start:stop],
            "alarms": body.alarms[start:stop],
        }
    )
