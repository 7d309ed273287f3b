"""The cohort view comes from aggregates kept at ingest, not from history.

Before: ``drift_summary`` (``GET /v1/cohorts``, the demo's summary) read and
parsed every drift report ever stored. The aggregates must say exactly what
that full read said, for any mix of sites, versions, redeliveries and
quality-flagged windows, and an older database must get them on open.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from edgeloop.monitor.intake.store import IntakeStore
from edgeloop.monitor.intake.tables import reports, site_drift, site_drift_inputs
from edgeloop_agent.contracts import DriftWindow, FeatureWindow, Report, SensorQuality

T0 = datetime.now(UTC) - timedelta(days=1)
CALM = {"load": (40, 30, 30), "ambient": (10, 80, 10)}
SHIFTED = {"load": (40, 30, 30), "ambient": (0, 5, 95)}


def _report(node, site, version, n, counts, share=0.3, stuck=False) -> Report:
    quality = (
        (SensorQuality(name="ambient", readings=100, stuck_entities=("p1",)),)
        if stuck
        else ()
    )
    window = DriftWindow(
        site=site,
        model_name="pump-failure",
        model_version=version,
        window_start=T0 + timedelta(minutes=n),
        window_end=T0 + timedelta(minutes=n + 1),
        rows=100,
        features=tuple(
            FeatureWindow(name=k, counts=v, psi=0.0) for k, v in counts.items()
        ),
        psi_threshold=0.2,
        drifted_share=share,
        quality=quality,
    )
    return Report(
        key=f"{node}:drift:{version}:{n}", node=node, created_at=T0, body=window
    )


def _from_history(store: IntakeStore) -> list[dict]:
    """What the old full read computed: every stored drift report, parsed."""
    out: dict[tuple[str, str], dict] = {}
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                reports.c.body, reports.c.baseline_share, reports.c.drifted_inputs
            ).where(reports.c.kind == "drift")
        ).all()
    for body, share, inputs in rows:
        window = json.loads(body)["body"]
        e = out.setdefault(
            (window["site"], window["model_version"]),
            {
                "site": window["site"],
                "version": window["model_version"],
                "windows": 0,
                "judged": 0,
                "max_baseline_share": 0.0,
                "max_reference_share": 0.0,
                "drifted_inputs": set(),
            },
        )
        e["windows"] += 1
        e["max_reference_share"] = max(
            e["max_reference_share"], window["drifted_share"]
        )
        if share is not None:
            e["judged"] += 1
            e["max_baseline_share"] = max(e["max_baseline_share"], share)
            e["drifted_inputs"].update(json.loads(inputs))
    return [
        {**e, "drifted_inputs": sorted(e["drifted_inputs"])}
        for _, e in sorted(out.items())
    ]


def _feed(store: IntakeStore) -> None:
    for node, site in (("a1", "north"), ("a2", "north"), ("b1", "south")):
        batch = [_report(node, site, "1", i, CALM, share=0.1 * i) for i in range(3)]
        store.accept(batch)
        store.accept(batch)  # redelivered: counted once
        store.accept([_report(node, site, "1", 5, CALM, stuck=True)])
    store.accept([_report("a1", "north", "1", 6, SHIFTED, share=0.9)])
    store.accept([_report("b1", "south", "2", 0, CALM)])


def test_the_aggregates_say_what_reading_every_report_said(tmp_path):
    store = IntakeStore(f"sqlite:///{tmp_path / 'intake.db'}")
    _feed(store)
    summary = store.drift_summary()
    assert summary == _from_history(store)
    north = next(r for r in summary if r["site"] == "north")
    assert north["windows"] == 9 and north["drifted_inputs"] == ["ambient"]
    assert north["max_baseline_share"] > 0 and north["max_reference_share"] == 0.9


def test_the_cohort_view_does_not_read_reports(tmp_path):
    store = IntakeStore(f"sqlite:///{tmp_path / 'intake.db'}")
    _feed(store)
    statements: list[str] = []
    sa.event.listen(
        store.engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, *a: statements.append(statement),
    )
    cohorts = store.cohorts()
    assert {c["site"] for c in cohorts} == {"north", "south"}
    assert statements and not [s for s in statements if "FROM reports" in s]


def test_an_older_database_gets_its_aggregates_on_open(tmp_path):
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    store = IntakeStore(url)
    _feed(store)
    expected = store.drift_summary()
    with store.engine.begin() as conn:  # as a version before the aggregates left it
        conn.execute(site_drift.delete())
        conn.execute(site_drift_inputs.delete())
    store.engine.dispose()
    assert IntakeStore(url).drift_summary() == expected


def test_the_cohort_view_counts_nodes_as_the_fleet_view_says(tmp_path) -> None:
    """cohorts() reads a few columns instead of building every NodeView; same answer."""
    from edgeloop.monitor.intake.tables import nodes

    store = IntakeStore(f"sqlite:///{tmp_path / 'i.db'}")
    with store.engine.begin() as conn:
        conn.execute(
            nodes.insert(),
            [
                {
                    "node": f"n{i:03d}",
                    "site": ["a", "b", ""][i % 3],
                    "active_version": ["1", "2", ""][i % 4 % 3],
                    "healthy": i % 5 != 0,
                    "quality_flags": json.dumps(["f0:stuck"] if i % 7 == 0 else []),
                    "drifted_inputs": json.dumps(["load"] if i % 6 == 0 else []),
                }
                for i in range(60)
            ],
        )
    expected: dict[str, dict] = {}
    for node in store.fleet():
        site = node.site or "(none)"
        e = expected.setdefault(
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
        e["nodes"] += 1
        e["healthy"] += int(node.healthy)
        version = node.active_version or "-"
        e["versions"][version] = e["versions"].get(version, 0) + 1
        if node.quality_flags:
            e["quality_flagged"].append(node.node)
        if node.drifted_inputs:
            e["drifting_nodes"].append(node.node)
    got = store.cohorts()
    assert [{k: v for k, v in c.items() if k != "drift"} for c in got] == [
        expected[s] for s in sorted(expected)
    ]
    assert any(c["quality_flagged"] for c in got) and any(
        c["drifting_nodes"] for c in got
    )
