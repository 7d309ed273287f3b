"""The intake store's read side: fleet, cohorts, drift per version, windows for triggers.

A mixin of :class:`edgeloop.monitor.intake.store.IntakeStore` (it only needs
``self.engine``), kept apart from the write path that accepts reports.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from edgeloop.monitor.intake import aggregates
from edgeloop.monitor.intake.tables import nodes, quality_flags, reports
from edgeloop.monitor.intake.views import NodeView, VersionDrift, WindowSummary
from edgeloop_agent.contracts import DriftWindow, Report


def _non_empty(text: str | None) -> bool:
    """Whether a stored JSON list holds anything (``"[]"``, ``""`` and NULL do not)."""
    return text is not None and text.strip() not in ("[]", "")


class StoreReads:
    """Queries over the intake's tables."""

    engine: sa.Engine

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
            item["alarm_causes"] = json.loads(item["alarm_causes"] or "{}")
            requests, errors = item.pop("requests") or 0, item.pop("errors") or 0
            item["error_rate"] = (
                errors / (requests + errors) if requests + errors else 0.0
            )
            out.append(NodeView.model_validate(item))
        return out

    def drift_summary(self) -> list[dict[str, Any]]:
        """Per site and model version: windows, worst share vs baseline and vs reference, inputs that drifted.

        This is the cohort view: window summaries of a site's nodes merged,
        read from the aggregates kept at ingest (independent of history).
        """
        with self.engine.connect() as conn:
            return aggregates.summary(conn)

    def cohorts(self) -> list[dict[str, Any]]:
        """Per site: nodes, versions running, health, quality flags, merged drift per version."""
        merged: dict[str, list[dict[str, Any]]] = {}
        for row in self.drift_summary():
            merged.setdefault(row["site"], []).append(
                {k: v for k, v in row.items() if k != "site"}
            )
        # only the columns the view needs, and JSON lists tested for emptiness
        # without parsing: at 10,000 nodes building every NodeView was most
        # of this request's time
        query = sa.select(
            nodes.c.node,
            nodes.c.site,
            nodes.c.healthy,
            nodes.c.active_version,
            nodes.c.quality_flags,
            nodes.c.drifted_inputs,
        ).order_by(nodes.c.node)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out: dict[str, dict[str, Any]] = {}
        for name, site_name, healthy, active, flags, drifted in rows:
            site = site_name or "(none)"
            entry = out.get(site)
            if entry is None:
                entry = out[site] = {
                    "site": site,
                    "nodes": 0,
                    "healthy": 0,
                    "versions": {},
                    "quality_flagged": [],
                    "drifting_nodes": [],
                }
            entry["nodes"] += 1
            entry["healthy"] += int(bool(healthy))
            version = active or "-"
            entry["versions"][version] = entry["versions"].get(version, 0) + 1
            if _non_empty(flags):
                entry["quality_flagged"].append(name)
            if _non_empty(drifted):
                entry["drifting_nodes"].append(name)
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

    def drift_by_node(self, version: str) -> dict[str, float]:
        """Per node, the drifted share (vs the training reference) of its latest window on ``version``.

        The rollout drift gate's baseline: the same nodes' share on the previous
        version, compared with what they report on the new one.
        """
        latest = (
            sa.select(reports.c.node, sa.func.max(reports.c.created_at).label("at"))
            .where((reports.c.kind == "drift") & (reports.c.model_version == version))
            .group_by(reports.c.node)
            .subquery()
        )
        query = (
            sa.select(reports.c.node, reports.c.body)
            .join(
                latest,
                (reports.c.node == latest.c.node)
                & (reports.c.created_at == latest.c.at),
            )
            .where((reports.c.kind == "drift") & (reports.c.model_version == version))
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {
            node: float(json.loads(body)["body"]["drifted_share"])
            for node, body in sorted(rows)
        }

    def recent_alarms(
        self, node: str = "", limit: int = 50, scan: int = 5_000
    ) -> list[dict[str, Any]]:
        """The newest drift windows that raised alarms, with the sensors behind them.

        Reads at most ``scan`` newest drift reports (bounded work whatever the
        history), newest first; each row: node, site, version, window end,
        alarms and ``alarm_causes`` (alarms by the sensor named first).
        """
        query = (
            sa.select(reports.c.node, nodes.c.site, reports.c.body)
            .select_from(reports.outerjoin(nodes, nodes.c.node == reports.c.node))
            .where(reports.c.kind == "drift")
            .order_by(reports.c.received_at.desc())
            .limit(scan)
        )
        if node:
            query = query.where(reports.c.node == node)
        out: list[dict[str, Any]] = []
        with self.engine.connect() as conn:
            for who, site, body in conn.execute(query):
                window = Report.model_validate_json(body).body
                if not isinstance(window, DriftWindow) or not window.alarms:
                    continue
                out.append(
                    {
                        "node": who,
                        "site": site or window.site,
                        "model_version": window.model_version,
                        "window_end": window.window_end.isoformat(),
                        "alarms": window.alarms,
                        "alarm_causes": window.alarm_causes,
                    }
                )
                if len(out) >= limit:
                    break
        return out

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
