"""Retention: the report store stops growing with history.

At agent defaults a node sends a heartbeat a minute, drift windows, samples
and readings; kept forever that is megabytes per node-day. Each kind has its
own retention (:class:`edgeloop.core.settings.RetentionPolicy`). A pass takes
reports *received* before the cutoff (through the ``(kind, received_at)``
index, in chunks, so memory stays bounded), folds heartbeats into one row per
node and day (``heartbeat_days``), and deletes them.

Deleting a report also deletes its idempotency key. An agent that never got
the acknowledgement may send it again later; so per node and kind the newest
``created_at`` removed is kept (``retention_marks``), and :meth:`accept`
treats a report at or before that mark as a duplicate. That relies on a node
sending each kind in order, which its outbox does (first in, first out).

One pass at a time across intake replicas: on PostgreSQL a transaction-scoped
advisory lock, so two replicas never fold the same heartbeats twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from edgeloop.core.settings import RetentionPolicy
from edgeloop.monitor.intake.tables import heartbeat_days, reports, retention_marks

CHUNK = 2_000
"""Reports per transaction: bounded memory and short locks on a big backlog."""
_LOCK_ID = 0x6564_6765_6C6F  # "edgelo": the retention pass's advisory lock


@dataclass
class PruneResult:
    """What one pass removed, per kind, and how many node-days it summarised."""

    removed: dict[str, int] = field(default_factory=dict)
    heartbeat_days: int = 0
    compacted: int = 0
    """Collected partitions merged into one file (``compaction.py``)."""
    expired: int = 0
    """Collected partitions deleted (``collected_days``)."""

    def total(self) -> int:
        """Reports removed in all."""
        return sum(self.removed.values())


def cutoffs(policy: RetentionPolicy, now: datetime) -> dict[str, datetime]:
    """Per kind, the receive time before which reports go (kinds kept forever absent)."""
    days = {
        "heartbeat": policy.heartbeat_days,
        "drift": policy.drift_days,
        "sample": policy.sample_days,
        "readings": policy.readings_days,
    }
    return {kind: now - timedelta(days=d) for kind, d in days.items() if d > 0}


def prune(
    engine: sa.Engine,
    policy: RetentionPolicy,
    now: datetime | None = None,
    writes: AbstractContextManager[Any] | None = None,
) -> PruneResult:
    """Apply the policy once; safe to run from several replicas at once.

    ``writes``: the store's writer lock (SQLite), taken per chunk, so ingest
    goes on between chunks of a long pass.
    """
    now = now or datetime.now(UTC)
    result = PruneResult()
    for kind, cutoff in cutoffs(policy, now).items():
        while True:
            with writes or nullcontext():
                removed, days = _prune_chunk(engine, kind, cutoff)
            if removed:
                result.removed[kind] = result.removed.get(kind, 0) + removed
            result.heartbeat_days += days
            if removed < CHUNK:
                break
    return result


def _prune_chunk(engine: sa.Engine, kind: str, cutoff: datetime) -> tuple[int, int]:
    """Remove up to :data:`CHUNK` reports of ``kind`` received before ``cutoff``."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        rows = conn.execute(
            sa.select(
                reports.c.key, reports.c.node, reports.c.created_at, reports.c.body
            )
            .where((reports.c.kind == kind) & (reports.c.received_at < cutoff))
            .order_by(reports.c.received_at)
            .limit(CHUNK)
        ).all()
        if not rows:
            return 0, 0
        days = _fold_heartbeats(conn, rows) if kind == "heartbeat" else 0
        conn.execute(reports.delete().where(reports.c.key.in_([r[0] for r in rows])))
        newest: dict[str, datetime] = {}
        for _, node, created, _ in rows:
            stamp = as_utc(created)
            if node not in newest or stamp > newest[node]:
                newest[node] = stamp
        _raise_marks(conn, kind, newest)
        return len(rows), days


def _fold_heartbeats(conn: sa.Connection, rows: Iterable[Any]) -> int:
    """Add heartbeats to their node-day summaries; returns the node-days touched."""
    folded: dict[tuple[str, str], dict[str, Any]] = {}
    for _, node, created, text in rows:
        stamp = as_utc(created)
        body = json.loads(text)["body"]
        one = {
            "heartbeats": 1,
            "first_at": stamp,
            "last_at": stamp,
            "model_version": body.get("model_version", ""),
            "requests": int(body.get("requests", 0)),
            "errors": int(body.get("errors", 0)),
            "max_p99_ms": body.get("latency_p99_ms"),
        }
        key = (str(node), stamp.date().isoformat())
        folded[key] = _combine(folded[key], one) if key in folded else one
    for (node, day), entry in folded.items():
        where = (heartbeat_days.c.node == node) & (heartbeat_days.c.day == day)
        have = (
            conn.execute(
                sa.select(
                    *[c for c in heartbeat_days.c if c.name not in ("node", "day")]
                ).where(where)
            )
            .mappings()
            .first()
        )
        if have is None:
            conn.execute(heartbeat_days.insert().values(node=node, day=day, **entry))
        else:
            stored = {
                **have,
                "first_at": as_utc(have["first_at"]),
                "last_at": as_utc(have["last_at"]),
            }
            conn.execute(
                heartbeat_days.update().where(where).values(**_combine(stored, entry))
            )
    return len(folded)


def _combine(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two node-day summaries as one.

    Request and error counters are cumulative on the node, so the day's
    figure is the largest seen; the version is the one at the latest time.
    """
    later = b if b["last_at"] >= a["last_at"] else a
    p99s = [p for p in (a["max_p99_ms"], b["max_p99_ms"]) if p is not None]
    return {
        "heartbeats": a["heartbeats"] + b["heartbeats"],
        "first_at": min(a["first_at"], b["first_at"]),
        "last_at": later["last_at"],
        "model_version": later["model_version"],
        "requests": max(a["requests"], b["requests"]),
        "errors": max(a["errors"], b["errors"]),
        "max_p99_ms": max(p99s) if p99s else None,
    }


def _raise_marks(conn: sa.Connection, kind: str, newest: dict[str, datetime]) -> None:
    """Move each node's mark for ``kind`` up to the newest report removed."""
    have = {
        node: as_utc(at)
        for node, at in conn.execute(
            sa.select(retention_marks.c.node, retention_marks.c.through).where(
                (retention_marks.c.kind == kind)
                & retention_marks.c.node.in_(list(newest))
            )
        )
    }
    for node, stamp in newest.items():
        where = (retention_marks.c.node == node) & (retention_marks.c.kind == kind)
        if node not in have:
            conn.execute(
                retention_marks.insert().values(node=node, kind=kind, through=stamp)
            )
        elif stamp > have[node]:
            conn.execute(retention_marks.update().where(where).values(through=stamp))


def marks_for(
    conn: sa.Connection, nodes: Iterable[str]
) -> dict[tuple[str, str], datetime]:
    """Per (node, kind), the newest report time retention removed."""
    names = sorted(set(nodes))
    if not names:
        return {}
    return {
        (node, kind): as_utc(at)
        for node, kind, at in conn.execute(
            sa.select(
                retention_marks.c.node,
                retention_marks.c.kind,
                retention_marks.c.through,
            ).where(retention_marks.c.node.in_(names))
        )
    }


def as_utc(stamp: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
