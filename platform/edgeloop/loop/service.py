"""One tick of the loop service: lead, follow the active run, evaluate, start at most one run.

Order matters and is the whole policy:

1. Only the lease holder acts; the others return at once.
2. An active run is followed first (a restarted service picks up the run it
   started: by id, or by name if it died before the id was written).
3. Every trigger kind is evaluated, with evidence recorded as before: drift and
   schedule (engine), new data (collected rows since the last retraining),
   performance (delayed labels vs the champion's holdout), manual and code
   change (requests recorded by ``edgeloop retrain``).
4. Fired decisions not yet handled join the active run if there is one, or
   start one run together: a trigger storm starts one retraining.
5. Otherwise a failed run whose backoff has passed is retried, up to
   ``max_attempts``; then it is given up. A failed run never moves the champion
   (the pipeline's gates and registration never ran to the end).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa

from edgeloop.core.errors import EdgeloopError, PermanentError, UsageError
from edgeloop.core.settings import PlatformSettings
from edgeloop.loop.backends import Backend
from edgeloop.loop.lease import LeaderLock
from edgeloop.loop.ledger import RunLedger, RunRow
from edgeloop.loop.metrics import LoopMetrics
from edgeloop.loop.tables import marks
from edgeloop.monitor.intake import collect
from edgeloop.provenance.audit import AuditLog
from edgeloop.train import pipeline_runs, retraining
from edgeloop.triggers.engine import TriggerEngine
from edgeloop.triggers.policy import Decision


class Lock(Protocol):
    """Leader election: :class:`LeaderLock` (database) or ``KubernetesLease``."""

    holder: str

    def acquire(self, now: datetime | None = None) -> bool:
        """Take or renew; True while this holder leads."""
        ...

    def release(self) -> None:
        """Give leadership up."""
        ...

    def leader(self) -> str | None:
        """The current holder, if any."""
        ...


def decision_key(decision: Decision) -> str:
    """A decision's identity: its kind and the instant it was made."""
    return f"{decision.kind}:{decision.at.isoformat()}"


def run_name(key: str, attempt: int = 1) -> str:
    """The name a run is started under (and found by after a restart)."""
    base = "edgeloop-" + "".join(c if c.isalnum() else "-" for c in key.lower())
    return base[:110] + (f"-a{attempt}" if attempt > 1 else "")


@dataclass
class Tick:
    """What one tick did (printed by ``loop run``, asserted by tests)."""

    leader: bool
    evaluated: list[str] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    started: str = ""
    followed: str = ""
    finished: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class LoopService:
    """The loop's state machine over a shared database, a trigger engine and a backend."""

    def __init__(
        self,
        settings: PlatformSettings,
        engine_factory: Callable[[], TriggerEngine],
        backend: Backend,
        db: sa.Engine,
        holder: str,
        clock: Callable[[], float] = time.time,
        lock: Lock | None = None,
    ) -> None:
        self.settings = settings
        self.engine_factory = engine_factory
        self.backend = backend
        self.ledger = RunLedger(db)
        self.lock: Lock = lock or LeaderLock(
            db, holder, ttl_s=settings.loop.lease_ttl_s
        )
        self.audit = AuditLog(settings.audit_path())
        self.clock = clock
        self._db = db
        self.metrics = LoopMetrics()

    def tick(self) -> Tick:
        """One round; errors of one part are reported, never stop the service."""
        counted: list[Decision] = []
        tick = self._tick(counted)
        self.metrics.record(tick, counted)
        return tick

    def _tick(self, counted: list[Decision]) -> Tick:
        """``counted`` gets the suppressed decisions and the fired ones handled now."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        try:
            leading = self.lock.acquire(now)
        except EdgeloopError as exc:  # the Lease's API server or the database is down
            return Tick(leader=False, errors=[str(exc)])
        if not leading:
            return Tick(leader=False)
        tick = Tick(leader=True)
        active = self.ledger.active()
        if active is not None:
            active = self._follow(active, tick)
        engine = self.engine_factory()
        decisions = self._evaluate(engine, now, tick)
        fresh = self._unhandled(engine, now)
        counted += [d for d in decisions if not d.fired] + fresh
        tick.evaluated = [f"{d.kind}: {d.reason}" for d in decisions]
        tick.fired = [decision_key(d) for d in fresh]
        if fresh and active is not None:
            self.ledger.update(active.key, coalesced=[*active.coalesced, *tick.fired])
        elif fresh:
            self._start(fresh, tick)
        elif active is None:
            retry = self.ledger.due_retry(now)
            if retry is not None:
                self._retry(retry, tick)
        return tick

    # -- evaluation -------------------------------------------------------

    def _evaluate(
        self, engine: TriggerEngine, now: datetime, tick: Tick
    ) -> list[Decision]:
        epoch = now.timestamp()
        decisions = engine.evaluate(now=epoch)
        since = self.ledger.last_success() or self._decisions_from(now)
        try:
            parts = collect.partitions(
                self.settings.collect_root(),
                "readings",
                self.settings.registry.model_name,
                since_day=since.strftime("%Y-%m-%d"),
            )
            decisions += engine.evaluate_new_data(collect.row_count(parts), now=epoch)
        except (OSError, ValueError) as exc:
            tick.errors.append(f"new data: {exc}")
        try:
            decisions += self._performance(engine, epoch)
        except EdgeloopError as exc:
            tick.errors.append(f"performance: {exc}")
        return decisions

    def _performance(self, engine: TriggerEngine, epoch: float) -> list[Decision]:
        """Live PR-AUC of the champion from delayed labels vs its holdout PR-AUC."""
        from edgeloop.monitor import labels
        from edgeloop.provenance.registry import ModelRef, Registry

        name = self.settings.registry.model_name
        quality = labels.alarm_quality(
            self.settings.collect_root(), name, self.settings.loop.label_horizon_hours
        )
        if not quality:
            return []
        champion = Registry(self.settings.tracking_uri()).show(
            ModelRef(name, alias="champion")
        )
        holdout = champion["metrics"].get("pr_auc")
        live = next(
            (
                q["pr_auc"]
                for q in quality
                if q["model_version"] == str(champion["version"]) and q["day"] == "all"
            ),
            None,
        )
        if holdout is None or live is None:
            return []
        return engine.evaluate_performance(
            float(live), float(holdout), str(champion["version"]), now=epoch
        )

    def _decisions_from(self, now: datetime) -> datetime:
        """The first time this service ran (decisions before it are history)."""
        with self._db.begin() as conn:
            at: datetime | None = conn.execute(
                sa.select(marks.c.at).where(marks.c.name == "decisions_from")
            ).scalar()
            if at is None:
                conn.execute(marks.insert().values(name="decisions_from", at=now))
                return now
        return at if at.tzinfo else at.replace(tzinfo=UTC)

    def _unhandled(self, engine: TriggerEngine, now: datetime) -> list[Decision]:
        floor = self._decisions_from(now) - timedelta(seconds=1)
        handled = self.ledger.handled()
        return [
            d
            for d in engine.decisions()
            if d.fired
            and d.at.astimezone(UTC) >= floor
            and decision_key(d) not in handled
        ]

    # -- runs ---------------------------------------------------------------

    def _arguments(self) -> dict[str, Any]:
        """Assemble the fresh dataset (or name the configured one) and build the run's arguments."""
        loop = self.settings.loop
        local = self.backend.name == "local"
        if loop.base_dataset:
            out = self.settings.home / "datasets" / time.strftime("fresh-%Y%m%d-%H%M%S")
            manifest = retraining.assemble(self.settings, loop.base_dataset, out)
            first = min((p["day"] for p in manifest["partitions"]), default="")
            params = {"holdout_from": first} if first else {}
            return pipeline_runs.pipeline_arguments(
                self.settings, out, local=local, **params
            )
        if loop.dataset_uri:
            return pipeline_runs.pipeline_arguments(
                self.settings, loop.dataset_uri, local=local
            )
        raise UsageError(
            "the loop service has no data to train on: set loop.base_dataset "
            "(EDGELOOP_LOOP__BASE_DATASET) or loop.dataset_uri"
        )

    def _start(self, fired: list[Decision], tick: Tick) -> None:
        cause, rest = fired[0], fired[1:]
        key = decision_key(cause)
        name = run_name(key)
        trigger = cause.model_dump(mode="json")
        if not self.ledger.create(key, name, self.backend.name, trigger):
            return  # another replica (or an earlier tick) owns this decision
        self.ledger.update(key, coalesced=[decision_key(d) for d in rest])
        tick.started = name
        self._launch(self.ledger.get(key), tick)  # type: ignore[arg-type]

    def _launch(self, row: RunRow, tick: Tick) -> None:
        try:
            arguments = self._arguments()
            arguments["trigger"] = pipeline_runs.trigger_label(row.trigger)
            self.audit.append(
                "retraining-started",
                self.settings.registry.model_name,
                run_name=row.run_name,
                backend=row.backend,
                attempt=row.attempts,
                trigger=row.trigger,
            )
            run_id = self.backend.start(row.run_name, arguments, row.trigger)
        except EdgeloopError as exc:
            self._failed(row, str(exc), tick)
            return
        self.ledger.update(row.key, state="running", run_id=run_id)
        self._follow(self.ledger.get(row.key), tick)  # type: ignore[arg-type]

    def _follow(self, row: RunRow, tick: Tick) -> RunRow | None:
        """Advance a run; returns it while it is still active."""
        tick.followed = row.run_name
        run_id = row.run_id
        try:
            if run_id is None:  # died between writing the row and the id
                run_id = self.backend.find(row.run_name)
                if run_id is None:
                    self._failed(row, "the run was never submitted", tick)
                    return None
                self.ledger.update(row.key, state="running", run_id=run_id)
            state, detail = self.backend.state(run_id)
        except PermanentError as exc:
            self._failed(row, str(exc), tick)
            return None
        except EdgeloopError as exc:  # retryable: the backend is down, ask again later
            tick.errors.append(str(exc))
            return row
        if state == "running":
            return row
        if state == "failed":
            self._failed(row, str(detail.get("error", "the run failed")), tick)
            return None
        self.ledger.update(row.key, state="succeeded", outcome=detail)
        self.audit.append(
            "retraining-finished",
            self.settings.registry.model_name,
            run_name=row.run_name,
            run_id=run_id,
            state="succeeded",
            registered=detail,
        )
        tick.finished[row.run_name] = "succeeded"
        return None

    def _failed(self, row: RunRow, error: str, tick: Tick) -> None:
        loop = self.settings.loop
        give_up = row.attempts >= loop.max_attempts
        delay = loop.retry_backoff_s * 2 ** (row.attempts - 1)
        retry_at = datetime.fromtimestamp(self.clock(), UTC) + timedelta(seconds=delay)
        self.ledger.update(
            row.key,
            state="abandoned" if give_up else "failed",
            next_attempt_at=None if give_up else retry_at,
            outcome={"error": error[:1000], "attempts": row.attempts},
        )
        self.audit.append(
            "retraining-finished",
            self.settings.registry.model_name,
            run_name=row.run_name,
            state="abandoned" if give_up else "failed",
            error=error[:1000],
            attempt=row.attempts,
            retry_at=None if give_up else retry_at.isoformat(),
        )
        tick.finished[row.run_name] = "abandoned" if give_up else "failed"

    def _retry(self, row: RunRow, tick: Tick) -> None:
        attempt = row.attempts + 1
        name = run_name(row.key, attempt)
        self.ledger.update(
            row.key,
            state="submitting",
            run_id=None,
            run_name=name,
            attempts=attempt,
            next_attempt_at=None,
        )
        tick.started = name
        self._launch(self.ledger.get(row.key), tick)  # type: ignore[arg-type]

    def release(self) -> None:
        """Give up leadership on a clean stop."""
        self.lock.release()
