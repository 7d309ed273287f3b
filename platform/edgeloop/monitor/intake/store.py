"""The intake's persistent store (SQLAlchemy Core: SQLite by default, PostgreSQL at scale).

Tables: ``tokens`` (per-node bearer tokens, stored as sha256 only), ``reports``
(every accepted report, unique by idempotency key, so a redelivered report
changes nothing) and ``nodes`` (the latest view of each node, updated in the
same transaction as the report that changed it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from edgeloop.core.settings import PlatformSettings, RetentionPolicy
from edgeloop.monitor.intake import aggregates, compaction, retention
from edgeloop.monitor.intake import tokens as tokens_mod
from edgeloop.monitor.intake.baseline import (
    Baseline,
    BaselinePolicy,
    Judgement,
    Pooled,
    observe,
    pooled_typical,
)
from edgeloop.monitor.intake.collect import write_report
from edgeloop.monitor.intake.reads import StoreReads
from edgeloop.monitor.intake.tables import (
    add_missing_columns,
    add_missing_indexes,
    baselines,
    metadata,
    nodes,
    quality_flags,
    reports,
)
from edgeloop.monitor.intake.tokens import Identity
from edgeloop_agent.contracts import DriftWindow, Heartbeat, Report

log = logging.getLogger(__name__)


@dataclass
class _BaselineRow:
    """A node's baseline as loaded for one batch, and whether it changed."""

    exists: bool
    state: Baseline
    dirty: bool = False


@dataclass
class _PooledCache:
    """A version's pooled wobble, when it was computed, and over how many nodes."""

    pooled: Pooled
    at: float
    ready: int
    grown: bool = False
    """A baseline on this version completed here since ``at``."""


class IntakeStore(StoreReads):
    """All intake persistence behind one small interface (reads in :mod:`.reads`)."""

    def __init__(
        self,
        url: str,
        baseline: BaselinePolicy | None = None,
        collect_root: Path | str | None = None,
        retention_policy: RetentionPolicy | None = None,
    ) -> None:
        self.baseline = baseline or BaselinePolicy()
        self.retention = retention_policy or RetentionPolicy()
        self.collect_root = collect_root
        self._pooled: dict[str, _PooledCache] = {}
        self._clock: Callable[[], float] = time.monotonic
        self.on_stored: Callable[[list[Report], datetime], None] | None = None
        """Called with the reports a batch added and the receive time, after commit."""
        self.on_version_change: Callable[[str, str, str], None] | None = None
        """Called with (site, old, new) when a node's heartbeat names another
        version than before (the intake's rollback metric)."""
        sqlite = url.startswith("sqlite")
        # SQLite has one writer: batches taken in the threadpool at once would
        # wait on its file lock and fail after its 5 s busy timeout (HTTP 503
        # under load). Here they queue on a lock instead; the timeout covers
        # other processes (the CLI) writing at the same time.
        self._writes: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if sqlite else contextlib.nullcontext()
        )
        self.engine = sa.create_engine(
            url, future=True, connect_args={"timeout": 60} if sqlite else {}
        )
        if sqlite:
            with self.engine.begin() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        metadata.create_all(self.engine)
        add_missing_columns(self.engine)
        add_missing_indexes(self.engine)
        aggregates.backfill(self.engine)

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> IntakeStore:
        """The store the settings describe (database, baseline policy, collection root)."""
        return cls(
            settings.intake_database_url(),
            settings.intake.baseline,
            settings.collect_root(),
            settings.intake.retention,
        )

    @classmethod
    def existing(cls, settings: PlatformSettings) -> IntakeStore | None:
        """The settings' store if an intake has ever run there, else None.

        Readers (lineage, reports) must not create an empty database as a side
        effect of looking.
        """
        url = settings.intake_database_url()
        if (
            url.startswith("sqlite:///")
            and not Path(url.removeprefix("sqlite:///")).exists()
        ):
            return None
        return cls.from_settings(settings)

    def create_token(
        self, node: str, site: str = "", cohort: str = "", role: str = "node"
    ) -> str:
        """A new token for ``node`` (replacing any old one); shown once.

        ``site``/``cohort`` pin the node's identity; ``role="reader"`` makes a
        token that reads the fleet views and posts nothing (see :mod:`.tokens`).
        """
        return tokens_mod.create(self.engine, node, site, cohort, role)

    def rotate_token(self, node: str, window_s: float) -> tuple[str, datetime]:
        """A new token; the current one stays valid ``window_s`` seconds more."""
        return tokens_mod.rotate(self.engine, node, timedelta(seconds=window_s))

    def identity_for(self, token: str) -> Identity | None:
        """The node (and pinned site, cohort) a bearer token belongs to, or None."""
        return tokens_mod.resolve(self.engine, token)

    def node_for(self, token: str) -> str | None:
        """The node a bearer token belongs to, or None."""
        identity = self.identity_for(token)
        return None if identity is None else identity.node

    def pin_identity(self, identity: Identity, batch: list[Report]) -> list[Report]:
        """The batch with the site (and cohort) the node's token pins."""
        return tokens_mod.pin(self.engine, identity, batch)

    def accept(self, batch: list[Report]) -> tuple[int, int]:
        """Store new reports and update node views; returns (accepted, duplicates).

        One transaction per batch, a handful of statements whatever its size:
        one lookup of every key, one multi-row insert, one baseline write per
        (node, version) and one node-view write per node.
        """
        with self._writes:
            return self._accept(batch)

    def _accept(self, batch: list[Report]) -> tuple[int, int]:
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            self._lock_nodes(conn, {r.node for r in batch})
            seen = {
                key
                for (key,) in conn.execute(
                    sa.select(reports.c.key).where(
                        reports.c.key.in_([r.key for r in batch])
                    )
                )
            }
            fresh: list[Report] = []
            for report in batch:
                if report.key not in seen:
                    seen.add(report.key)
                    fresh.append(report)
            fresh = self._not_pruned(conn, fresh)
            if not fresh:
                return 0, len(batch)
            if self.collect_root is not None:  # files first: see collect.py
                for report in fresh:
                    write_report(self.collect_root, report)
            states: dict[tuple[str, str], _BaselineRow] = {}
            pooled: dict[str, dict[str, float]] = {}
            judged: list[Judgement | None] = [
                self._judge(conn, r.node, r.body, states, pooled)
                if isinstance(r.body, DriftWindow)
                else None
                for r in fresh
            ]
            self._save_baselines(conn, states)
            conn.execute(
                self._insert_new(reports),
                [
                    {
                        "key": r.key,
                        "node": r.node,
                        "kind": r.body.kind,
                        "model_version": getattr(r.body, "model_version", ""),
                        "created_at": r.created_at,
                        "received_at": now,
                        "body": r.model_dump_json(),
                        "baseline_share": j.drifted_share if j else None,
                        "drifted_inputs": json.dumps(list(j.drifted) if j else []),
                    }
                    for r, j in zip(fresh, judged, strict=True)
                ],
            )
            aggregates.apply(
                conn,
                aggregates.deltas(
                    (r, j.drifted_share, j.drifted)
                    for r, j in zip(fresh, judged, strict=True)
                    if j is not None
                ),
            )
            by_node: dict[str, list[tuple[Report, Judgement | None]]] = {}
            for r, j in zip(fresh, judged, strict=True):
                by_node.setdefault(r.node, []).append((r, j))
            for node, items in by_node.items():
                self._update_node(conn, node, items, now)
        if self.on_stored is not None:  # committed: each counted once
            self.on_stored(fresh, now)
        return len(fresh), len(batch) - len(fresh)

    def _not_pruned(self, conn: sa.Connection, fresh: list[Report]) -> list[Report]:
        """Drop reports retention already removed (a late redelivery, see retention.py).

        Read after the keys, so a pass that commits in between is seen here.
        """
        marks = retention.marks_for(conn, (r.node for r in fresh))
        if not marks:
            return fresh
        return [
            r
            for r in fresh
            if (mark := marks.get((r.node, r.body.kind))) is None
            or retention.as_utc(r.created_at) > mark
        ]

    def prune(self, now: datetime | None = None) -> retention.PruneResult:
        """Apply the retention policy once (the intake does it every ``interval_s``).

        Collected partitions are compacted first, while the database still
        knows which of their reports were committed (``compaction.py``).
        """
        now = now or datetime.now(UTC)
        compacted, expired = compaction.tidy(
            self.engine, self.collect_root, self.retention, now
        )
        result = retention.prune(self.engine, self.retention, now, self._writes)
        result.compacted, result.expired = compacted, expired
        return result

    def _lock_nodes(self, conn: sa.Connection, names: set[str]) -> None:
        """Serialise writes for these nodes across intake replicas (PostgreSQL).

        A node's reports, baseline and view are read and then written in one
        transaction; two replicas taking the same node's batches at once (an
        agent's retry through a load balancer) raced on that: both saw no key,
        both inserted, one failed (58 HTTP 500 in 100 pairs). A transaction-scoped
        advisory lock per node, taken in a fixed order (no deadlock), makes the
        second wait and then see the first's rows. SQLite has one writer anyway.
        """
        if self.engine.dialect.name != "postgresql":
            return
        for name in sorted(names):
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext(:node))"), {"node": name}
            )

    def _insert_new(self, table: sa.Table) -> Any:
        """``INSERT … ON CONFLICT DO NOTHING``: a key stored meanwhile is kept, not an error."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table).on_conflict_do_nothing()
        if self.engine.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(table).on_conflict_do_nothing()
        return table.insert()

    def _judge(
        self,
        conn: sa.Connection,
        node: str,
        window: DriftWindow,
        states: dict[tuple[str, str], _BaselineRow],
        pooled: dict[str, dict[str, float]],
    ) -> Judgement:
        """Judge a window against the node's baseline for its version (building it first).

        Windows with data-quality flags never enter a baseline: a stuck sensor
        or a NaN burst is not what the node normally looks like.
        """
        key = (node, window.model_version)
        if key not in states:
            row = conn.execute(
                sa.select(baselines.c.state).where(
                    (baselines.c.node == node)
                    & (baselines.c.model_version == window.model_version)
                )
            ).first()
            states[key] = _BaselineRow(
                exists=row is not None,
                state=Baseline()
                if row is None
                else Baseline.from_json(json.loads(row[0])),
            )
        entry = states[key]
        if not entry.state.ready() and quality_flags(window):
            return Judgement(drifted_share=None)
        if entry.state.ready() and window.model_version not in pooled:
            pooled[window.model_version] = self._pooled_for(conn, window.model_version)
        judged = observe(
            entry.state, window, self.baseline, pooled.get(window.model_version)
        )
        if judged.drifted_share is None:  # the window went into the baseline
            entry.dirty = True
        return judged

    def _save_baselines(
        self, conn: sa.Connection, states: dict[tuple[str, str], _BaselineRow]
    ) -> None:
        for (node, version), entry in states.items():
            if not entry.dirty:
                continue
            values = {
                "state": json.dumps(entry.state.to_json()),
                "ready": entry.state.ready(),
                "typical": json.dumps(entry.state.typical),
            }
            cached = self._pooled.get(version)
            if entry.state.ready() and cached is not None:
                cached.grown = True
            if entry.exists:
                conn.execute(
                    baselines.update()
                    .where(
                        (baselines.c.node == node)
                        & (baselines.c.model_version == version)
                    )
                    .values(**values)
                )
            else:
                conn.execute(
                    baselines.insert().values(
                        node=node, model_version=version, **values
                    )
                )

    def _pooled_for(self, conn: sa.Connection, version: str) -> dict[str, float]:
        """Each input's wobble across the fleet on ``version`` (cached).

        Pooling reads every ready node's wobble, so it is not redone per POST:
        a cached value is kept for ``pooled_refresh_s``, and is redone sooner
        when a baseline completed here while fewer than ``pooled_exact_below``
        were ready. At 10,000 nodes onboarding that is one read of the fleet
        per interval instead of one per completed baseline (each of which
        re-read and re-parsed every baseline before).
        """
        cached = self._pooled.get(version)
        now = self._clock()
        if cached is not None and now - cached.at < self.baseline.pooled_refresh_s:
            exact = cached.ready < self.baseline.pooled_exact_below
            if not (cached.grown and exact):
                return cached.pooled.typical
        ready = baselines.c.ready.is_(True) & (baselines.c.model_version == version)
        typicals: dict[str, dict[str, float]] = {}
        older = False
        # the wobble column alone: each node's whole window counts (``state``,
        # kilobytes per node) were fetched here too and thrown away
        for node, typical in conn.execute(
            sa.select(baselines.c.node, baselines.c.typical).where(ready)
        ):
            if typical and typical != "{}":
                typicals[str(node)] = {
                    k: float(v) for k, v in json.loads(typical).items()
                }
            else:
                older = True
        if older:  # written before the typical column existed: from the state
            for node, state in conn.execute(
                sa.select(baselines.c.node, baselines.c.state).where(
                    ready & baselines.c.typical.in_(("", "{}"))
                )
            ):
                wobble = Baseline.from_json(json.loads(state)).typical
                typicals[str(node)] = {k: float(v) for k, v in wobble.items()}
        pooled = pooled_typical(typicals, self.baseline)
        if pooled.outliers and (
            cached is None or cached.pooled.outliers != pooled.outliers
        ):
            log.warning(
                "version %s: baselines of %s left out of the fleet's wobble (outliers)",
                version,
                ", ".join(pooled.outliers),
            )
        self._pooled[version] = _PooledCache(pooled, now, len(typicals))
        return pooled.typical

    def pooled_outliers(self, version: str) -> tuple[str, ...]:
        """Nodes whose baseline was left out of ``version``'s pooled wobble."""
        with self.engine.connect() as conn:
            self._pooled_for(conn, version)
        return self._pooled[version].pooled.outliers

    def _update_node(
        self,
        conn: sa.Connection,
        node: str,
        items: list[tuple[Report, Judgement | None]],
        now: datetime,
    ) -> None:
        """Fold a batch's reports into the node's view with one write.

        A heartbeat's time is the agent's clock, clamped to the receive time: a
        clock running ahead must not make every later heartbeat look out of
        order (which froze the node's view until the clock caught up).
        """
        current = conn.execute(
            sa.select(nodes.c.last_seen, nodes.c.active_version).where(
                nodes.c.node == node
            )
        ).first()
        last_seen = None if current is None or current[0] is None else current[0]
        if last_seen is not None and last_seen.tzinfo is None:
            last_seen = last_seen.replace(tzinfo=UTC)
        values: dict[str, Any] = {}
        for report, judged in items:
            body = report.body
            values.update(site=body.site, cohort=body.cohort)
            if isinstance(body, Heartbeat):
                stamp = min(report.created_at, now)
                if last_seen is not None and last_seen > stamp:
                    continue  # a late, out-of-order heartbeat: keep the newer view
                last_seen = stamp
                values.update(
                    last_seen=stamp,
                    outbox_dropped=body.outbox_dropped,
                    dead_letters=body.dead_letters,
                    active_version=body.model_version,
                    healthy=bool(body.model_version) and not body.last_model_failure,
                    requests=body.requests,
                    errors=body.errors,
                    p99_ms=body.latency_p99_ms,
                )
            elif isinstance(body, DriftWindow):
                values.update(
                    drifted_share=body.drifted_share,
                    baseline_share=judged.drifted_share if judged else None,
                    drifted_inputs=json.dumps(list(judged.drifted) if judged else []),
                    quality_flags=json.dumps(quality_flags(body)),
                    alarms=body.alarms,
                    alarm_causes=json.dumps(body.alarm_causes, sort_keys=True),
                )
        if current is None:
            conn.execute(nodes.insert().values(node=node, **values))
        elif values:
            conn.execute(nodes.update().where(nodes.c.node == node).values(**values))
            was, now_serving = current[1] or "", values.get("active_version", "")
            if was and now_serving and was != now_serving and self.on_version_change:
                self.on_version_change(values.get("site", ""), was, now_serving)
