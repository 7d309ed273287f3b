"""The intake's persistent store (SQLAlchemy Core: SQLite by default, PostgreSQL at scale).

Tables: ``tokens`` (per-node bearer tokens, stored as sha256 only), ``reports``
(every accepted report, unique by idempotency key, so a redelivered report
changes nothing) and ``nodes`` (the latest view of each node, updated in the
same transaction as the report that changed it).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from edgeloop.core.settings import PlatformSettings
from edgeloop.monitor.intake.baseline import (
    Baseline,
    BaselinePolicy,
    Judgement,
    observe,
    pooled_typical,
)
from edgeloop.monitor.intake.collect import write_report
from edgeloop.monitor.intake.views import NodeView, VersionDrift, WindowSummary
from edgeloop_agent.contracts import DriftWindow, Heartbeat, Report

metadata = sa.MetaData()
tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("node", sa.String(253), primary_key=True),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
reports = sa.Table(
    "reports",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("node", sa.String(253), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False, default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    # drift windows: share of inputs drifted against the node's own baseline
    sa.Column("baseline_share", sa.Float, nullable=True),
    sa.Column("drifted_inputs", sa.Text, nullable=False, default="[]"),
)
baselines = sa.Table(
    "baselines",
    metadata,
    sa.Column("node", sa.String(253), primary_key=True),
    sa.Column("model_version", sa.String(64), primary_key=True),
    sa.Column("ready", sa.Boolean, nullable=False, default=False),
    sa.Column("state", sa.Text, nullable=False),
)
nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("node", sa.String(253), primary_key=True),
    sa.Column("site", sa.String(253), nullable=False, default=""),
    sa.Column("cohort", sa.String(253), nullable=False, default=""),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
    sa.Column("active_version", sa.String(64), nullable=False, default=""),
    sa.Column("healthy", sa.Boolean, nullable=False, default=True),
    sa.Column("requests", sa.Integer, nullable=False, default=0),
    sa.Column("errors", sa.Integer, nullable=False, default=0),
    sa.Column("p99_ms", sa.Float, nullable=True),
    sa.Column("drifted_share", sa.Float, nullable=True),
    sa.Column("baseline_share", sa.Float, nullable=True),
    sa.Column("drifted_inputs", sa.Text, nullable=False, default="[]"),
    sa.Column("quality_flags", sa.Text, nullable=False, default="[]"),
)


@dataclass
class _BaselineRow:
    """A node's baseline as loaded for one batch, and whether it changed."""

    exists: bool
    state: Baseline
    dirty: bool = False


def quality_flags(window: DriftWindow) -> list[str]:
    """``sensor:kind`` for every data-quality problem a window reports."""
    return [
        f"{q.name}:{kind}"
        for q in window.quality
        for kind, hit in (
            ("nan", q.nan_count > 0),
            ("out_of_range", q.out_of_range > 0),
            ("spikes", q.spikes > 0),
            ("stuck", bool(q.stuck_entities)),
        )
        if hit
    ]


def token_hash(token: str) -> str:
    """What is stored for a token (never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()


class IntakeStore:
    """All intake persistence behind one small interface."""

    def __init__(
        self,
        url: str,
        baseline: BaselinePolicy | None = None,
        collect_root: Path | None = None,
    ) -> None:
        self.baseline = baseline or BaselinePolicy()
        self.collect_root = collect_root
        self._pooled: dict[str, tuple[int, dict[str, float]]] = {}
        self.engine = sa.create_engine(url, future=True)
        if url.startswith("sqlite"):
            with self.engine.begin() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        metadata.create_all(self.engine)

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> IntakeStore:
        """The store the settings describe (database, baseline policy, collection root)."""
        return cls(
            settings.intake_database_url(),
            settings.intake.baseline,
            settings.collect_root(),
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

    def create_token(self, node: str) -> str:
        """A new token for ``node`` (replacing any old one); shown once."""
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(tokens.delete().where(tokens.c.node == node))
            conn.execute(
                tokens.insert().values(
                    node=node,
                    token_sha256=token_hash(token),
                    created_at=datetime.now(UTC),
                )
            )
        return token

    def node_for(self, token: str) -> str | None:
        """The node a bearer token belongs to, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(tokens.c.node).where(
                    tokens.c.token_sha256 == token_hash(token)
                )
            ).first()
        return None if row is None else str(row[0])

    def accept(self, batch: list[Report]) -> tuple[int, int]:
        """Store new reports and update node views; returns (accepted, duplicates).

        One transaction per batch, a handful of statements whatever its size:
        one lookup of every key, one multi-row insert, one baseline write per
        (node, version) and one node-view write per node.
        """
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
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
                reports.insert(),
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
            by_node: dict[str, list[tuple[Report, Judgement | None]]] = {}
            for r, j in zip(fresh, judged, strict=True):
                by_node.setdefault(r.node, []).append((r, j))
            for node, items in by_node.items():
                self._update_node(conn, node, items)
        return len(fresh), len(batch) - len(fresh)

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
            }
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
        """Each input's wobble across the fleet on ``version`` (cached per ready count)."""
        ready = baselines.c.ready.is_(True) & (baselines.c.model_version == version)
        count = int(
            conn.execute(
                sa.select(sa.func.count()).select_from(baselines).where(ready)
            ).scalar_one()
        )
        cached = self._pooled.get(version)
        if cached is not None and cached[0] == count:
            return cached[1]
        typicals = [
            Baseline.from_json(json.loads(text)).typical
            for (text,) in conn.execute(sa.select(baselines.c.state).where(ready))
        ]
        pooled = pooled_typical(typicals, self.baseline.pooled_quantile)
        self._pooled[version] = (count, pooled)
        return pooled

    def _update_node(
        self,
        conn: sa.Connection,
        node: str,
        items: list[tuple[Report, Judgement | None]],
    ) -> None:
        """Fold a batch's reports into the node's view with one write."""
        current = conn.execute(
            sa.select(nodes.c.last_seen).where(nodes.c.node == node)
        ).first()
        last_seen = None if current is None or current[0] is None else current[0]
        if last_seen is not None and last_seen.tzinfo is None:
            last_seen = last_seen.replace(tzinfo=UTC)
        values: dict[str, Any] = {}
        for report, judged in items:
            body = report.body
            values.update(site=body.site, cohort=body.cohort)
            if isinstance(body, Heartbeat):
                if last_seen is not None and last_seen > report.created_at:
                    continue  # a late, out-of-order heartbeat: keep the newer view
                last_seen = report.created_at
                values.update(
                    last_seen=report.created_at,
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
                )
        if current is None:
            conn.execute(nodes.insert().values(node=node, **values))
        elif values:
            conn.execute(nodes.update().where(nodes.c.node == node).values(**values))

    def fleet(self) -> list[NodeView]:
        """Per node: version, health, last seen, latest drift and quality flags."""
        with self.engine.connect() as conn:
            rows = (
                conn.execute(sa.select(nodes).order_by(nodes.c.node)).mappings().all()
            )
        out = []
        for row in rows:
            item = dict(row)
            seen = item["last_seen"]
            item["last_seen"] = (
                None
                if seen is None
                else (seen if seen.tzinfo else seen.replace(tzinfo=UTC)).timestamp()
            )
            item["quality_flags"] = json.loads(item["quality_flags"] or "[]")
            item["drifted_inputs"] = json.loads(item["drifted_inputs"] or "[]")
            requests, errors = item.pop("requests") or 0, item.pop("errors") or 0
            item["error_rate"] = (
                errors / (requests + errors) if requests + errors else 0.0
            )
            out.append(NodeView.model_validate(item))
        return out

    def drift_summary(self) -> list[dict[str, Any]]:
        """Per site and model version: windows, worst share vs baseline and vs reference, inputs that drifted.

        This is the cohort view: window summaries of a site's nodes merged.
        """
        query = (
            sa.select(
                nodes.c.site,
                reports.c.model_version,
                reports.c.baseline_share,
                reports.c.drifted_inputs,
                reports.c.body,
            )
            .select_from(reports.join(nodes, nodes.c.node == reports.c.node))
            .where(reports.c.kind == "drift")
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for site, version, share, inputs, body in rows:
            entry = out.setdefault(
                (site, version),
                {
                    "site": site,
                    "version": version,
                    "windows": 0,
                    "judged": 0,
                    "max_baseline_share": 0.0,
                    "max_reference_share": 0.0,
                    "drifted_inputs": set(),
                },
            )
            entry["windows"] += 1
            reference = json.loads(body)["body"]["drifted_share"]
            entry["max_reference_share"] = max(entry["max_reference_share"], reference)
            if share is not None:
                entry["judged"] += 1
                entry["max_baseline_share"] = max(entry["max_baseline_share"], share)
                entry["drifted_inputs"].update(json.loads(inputs or "[]"))
        return [
            {**e, "drifted_inputs": sorted(e["drifted_inputs"])}
            for _, e in sorted(out.items())
        ]

    def cohorts(self) -> list[dict[str, Any]]:
        """Per site: nodes, versions running, health, quality flags, merged drift per version."""
        merged: dict[str, list[dict[str, Any]]] = {}
        for row in self.drift_summary():
            merged.setdefault(row["site"], []).append(
                {k: v for k, v in row.items() if k != "site"}
            )
        out: dict[str, dict[str, Any]] = {}
        for node in self.fleet():
            site = node.site or "(none)"
            entry = out.setdefault(
                site,
                {
                    "site": site,
                    "nodes": 0,
                    "healthy": 0,
                    "versions": {},
                    "quality_flagged": [],
                    "drifting_nodes": [],
                },
            )
            entry["nodes"] += 1
            entry["healthy"] += int(node.healthy)
            version = node.active_version or "-"
            entry["versions"][version] = entry["versions"].get(version, 0) + 1
            if node.quality_flags:
                entry["quality_flagged"].append(node.node)
            if node.drifted_inputs:
                entry["drifting_nodes"].append(node.node)
        return [
            {**entry, "drift": merged.get(site, [])}
            for site, entry in sorted(out.items())
        ]

    def version_drift(self, version: str) -> VersionDrift:
        """Drift reports received for a model version, and how many drifted vs baseline."""
        query = sa.select(
            sa.func.count(),
            sa.func.count(reports.c.baseline_share),
            sa.func.max(reports.c.baseline_share),
        ).where((reports.c.kind == "drift") & (reports.c.model_version == version))
        with self.engine.connect() as conn:
            total, judged, worst = conn.execute(query).one()
            drifted = conn.execute(
                sa.select(reports.c.key)
                .where(
                    (reports.c.kind == "drift")
                    & (reports.c.model_version == version)
                    & (reports.c.drifted_inputs != "[]")
                )
                .order_by(reports.c.received_at)
            ).all()
        return VersionDrift(
            drift_reports=int(total),
            judged_against_baseline=int(judged),
            max_baseline_share=worst,
            drifted_reports=[r[0] for r in drifted],
        )

    def count(self, kind: str | None = None, node: str | None = None) -> int:
        """Stored reports (of one kind, from one node)."""
        query = sa.select(sa.func.count()).select_from(reports)
        if kind:
            query = query.where(reports.c.kind == kind)
        if node:
            query = query.where(reports.c.node == node)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def drift_windows(
        self, received_after: datetime | None
    ) -> tuple[list[Any], datetime | None]:
        """Drift windows received after a point in time, and the newest receive time.

        Returned as :class:`edgeloop.monitor.intake.views.WindowSummary`; the cohort
        is the report's cohort, or its site when the node has none, and the
        drifted share is the one against the node's own baseline (None while
        the baseline is being built).
        """
        query = sa.select(
            reports.c.body, reports.c.received_at, reports.c.baseline_share
        ).where(reports.c.kind == "drift")
        if received_after is not None:
            query = query.where(reports.c.received_at > received_after)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(reports.c.received_at)).all()
        out = []
        newest = received_after
        for body, received, baseline_share in rows:
            report = Report.model_validate_json(body)
            window = report.body
            assert isinstance(window, DriftWindow)
            flags = tuple(quality_flags(window))
            out.append(
                WindowSummary(
                    key=report.key,
                    node=report.node,
                    cohort=window.cohort or window.site,
                    window_end=window.window_end.timestamp(),
                    drifted_share=baseline_share,
                    quality_flags=flags,
                    reference_share=window.drifted_share,
                    version=window.model_version,
                )
            )
            received = received if received.tzinfo else received.replace(tzinfo=UTC)
            newest = received if newest is None or received > newest else newest
        return out, newest
