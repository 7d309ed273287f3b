"""Every retraining the loop service started, in the shared database.

A run row is written *before* the backend is asked to start it (state
``submitting``, with the run name the backend will know it by), so a service
killed at any point finds, on restart, either the run id or the name to look
it up by, and follows that run instead of starting another. The row's key is
the decision that caused it: the primary key makes "one trigger, one run"
hold across replicas too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from edgeloop.loop.tables import create_all, loop_runs

ACTIVE = ("submitting", "running")


@dataclass(frozen=True)
class RunRow:
    """One row of ``loop_runs``, typed."""

    key: str
    run_name: str
    state: str
    backend: str
    run_id: str | None
    attempts: int
    next_attempt_at: datetime | None
    trigger: dict[str, Any]
    coalesced: list[str]
    outcome: dict[str, Any]
    updated_at: datetime


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class RunLedger:
    """Reads and writes ``loop_runs``."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        create_all(engine)

    def _row(self, row: Any) -> RunRow:
        return RunRow(
            key=row.key,
            run_name=row.run_name,
            state=row.state,
            backend=row.backend,
            run_id=row.run_id,
            attempts=int(row.attempts),
            next_attempt_at=_aware(row.next_attempt_at),
            trigger=json.loads(row.trigger),
            coalesced=json.loads(row.coalesced or "[]"),
            outcome=json.loads(row.outcome or "{}"),
            updated_at=_aware(row.updated_at) or datetime.now(UTC),
        )

    def create(
        self, key: str, run_name: str, backend: str, trigger: dict[str, Any]
    ) -> bool:
        """Record a run about to start; False if this decision already has one."""
        now = datetime.now(UTC)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    loop_runs.insert().values(
                        key=key,
                        run_name=run_name,
                        state="submitting",
                        backend=backend,
                        attempts=1,
                        created_at=now,
                        updated_at=now,
                        trigger=json.dumps(trigger, default=str),
                        coalesced="[]",
                        outcome="{}",
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def update(self, key: str, **values: Any) -> None:
        """Change some columns of one run (dicts and lists are stored as JSON)."""
        encoded = {
            k: json.dumps(v, default=str) if isinstance(v, dict | list) else v
            for k, v in values.items()
        }
        with self.engine.begin() as conn:
            conn.execute(
                loop_runs.update()
                .where(loop_runs.c.key == key)
                .values(updated_at=datetime.now(UTC), **encoded)
            )

    def get(self, key: str) -> RunRow | None:
        """One run by key."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(loop_runs).where(loop_runs.c.key == key)
            ).first()
        return None if row is None else self._row(row)

    def active(self) -> RunRow | None:
        """The run being submitted or followed, if any (at most one at a time)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(loop_runs)
                .where(loop_runs.c.state.in_(ACTIVE))
                .order_by(loop_runs.c.created_at)
            ).first()
        return None if row is None else self._row(row)

    def due_retry(self, now: datetime) -> RunRow | None:
        """A failed run whose retry time has come."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(loop_runs)
                .where(
                    (loop_runs.c.state == "failed")
                    & (loop_runs.c.next_attempt_at.is_not(None))
                    & (loop_runs.c.next_attempt_at <= now)
                )
                .order_by(loop_runs.c.next_attempt_at)
            ).first()
        return None if row is None else self._row(row)

    def handled(self) -> set[str]:
        """Keys of every decision that started or joined a run."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(loop_runs.c.key, loop_runs.c.coalesced)).all()
        keys = {r.key for r in rows}
        for r in rows:
            keys.update(json.loads(r.coalesced or "[]"))
        return keys

    def last_success(self) -> datetime | None:
        """When the latest successful retraining ended."""
        with self.engine.connect() as conn:
            at = conn.execute(
                sa.select(sa.func.max(loop_runs.c.updated_at)).where(
                    loop_runs.c.state == "succeeded"
                )
            ).scalar()
        return _aware(at)

    def runs(self) -> list[RunRow]:
        """Every run, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(loop_runs).order_by(loop_runs.c.created_at.desc())
            ).all()
        return [self._row(r) for r in rows]
