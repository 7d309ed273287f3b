"""The intake's /metrics: fleet gauges read from the nodes table, ingest counted as it happens.

A real intake on 127.0.0.1 takes real POSTs from three nodes at two sites;
the scrape is parsed with Prometheus' own text parser.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from edgeloop.core.settings import PlatformSettings
from edgeloop.monitor.intake.app import create_app
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop.monitor.intake.tables import nodes
from edgeloop_agent.contracts import (
    DriftWindow,
    FeatureWindow,
    Heartbeat,
    Report,
    ReportBatch,
)

from ....conftest import free_port
from ....metrics_text import metric
from ....servers import serve_app


def _heartbeat(node: str, site: str, at: datetime, version: str) -> Report:
    body = Heartbeat(
        site=site,
        model_version=version,
        requests=100,
        errors=0,
        outbox_depth=0,
        dead_letters=2 if node == "n3" else 0,
        uptime_s=1,
    )
    return Report(
        key=f"{node}:hb:{int(at.timestamp() * 1e6)}",
        node=node,
        created_at=at,
        body=body,
    )


def _drift(node: str, site: str, at: datetime, version: str, share: float) -> Report:
    window = DriftWindow(
        site=site,
        model_name="pump-failure",
        model_version=version,
        window_start=at - timedelta(hours=1),
        window_end=at,
        rows=100,
        features=(FeatureWindow(name="load", counts=(40, 30, 30), psi=0.5),),
        psi_threshold=0.2,
        drifted_share=share,
        alarms=3,
    )
    return Report(
        key=f"{node}:drift:{int(at.timestamp() * 1e6)}",
        node=node,
        created_at=at,
        body=window,
    )


def _post(url: str, token: str, batch: list[Report]) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/reports",
        content=ReportBatch(reports=tuple(batch)).model_dump_json(),
        headers={"authorization": f"Bearer {token}"},
    )


@pytest.fixture
def intake(tmp_path):
    settings = PlatformSettings(home=tmp_path)
    settings.intake.silent_after_s = 600
    store = IntakeStore.from_settings(settings)
    tokens = {
        "n1": store.create_token("n1", site="s1"),
        "n2": store.create_token("n2", site="s1"),
        "n3": store.create_token("n3", site="s2"),
    }
    return settings, store, tokens


def test_fleet_gauges_and_ingest_counters(intake):
    settings, store, tokens = intake
    now = datetime.now(UTC)
    app = create_app(settings, store)
    with serve_app(app, free_port()) as url:
        # n2 was offline: its heartbeat from two hours ago arrives now (lag)
        old = [_heartbeat("n2", "s1", now - timedelta(hours=2), "1")]
        assert _post(url, tokens["n2"], old).is_success
        assert _post(url, tokens["n2"], old).json()["duplicates"] == 1
        n3 = [_heartbeat("n3", "s2", now, "2"), _drift("n3", "s2", now, "2", 0.75)]
        assert _post(url, tokens["n3"], n3).is_success
        assert _post(url, "not-a-token", n3).status_code == 401
        assert _post(url, tokens["n1"], n3).status_code == 403
        # n1 rolls back from version 3 to 1 and later rolls forward to 3 again
        for minutes, version in ((-3, "3"), (-2, "1"), (-1, "3")):
            beat = [_heartbeat("n1", "s1", now + timedelta(minutes=minutes), version)]
            assert _post(url, tokens["n1"], beat).is_success
        assert _post(url, tokens["n1"], [_heartbeat("n1", "s1", now, "1")]).is_success
        with store.engine.begin() as conn:  # judged against its baseline: drifting
            conn.execute(
                nodes.update()
                .where(nodes.c.node == "n3")
                .values(drifted_inputs='["load", "vibration"]', baseline_share=0.5)
            )
        scrape = httpx.get(f"{url}/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = scrape.text

    assert metric(text, "edgeloop_fleet_nodes", site="s1", version="1") == 2
    assert metric(text, "edgeloop_fleet_nodes", site="s2", version="2") == 1
    assert metric(text, "edgeloop_fleet_silent_nodes", site="s1") == 1  # n2
    assert metric(text, "edgeloop_fleet_silent_nodes", site="s2") == 0
    assert metric(text, "edgeloop_fleet_drifting_nodes", site="s2") == 1
    assert metric(text, "edgeloop_fleet_drifting_nodes", site="s1") == 0
    assert metric(text, "edgeloop_fleet_dead_letters", site="s2") == 2
    shares = {"reference": 0.75, "baseline": 0.5}
    for against, share in shares.items():
        found = metric(
            text, "edgeloop_site_drifted_share", site="s2", version="2", against=against
        )
        assert found == pytest.approx(share)

    assert metric(text, "edgeloop_intake_posts_total", code="200") == 7
    assert metric(text, "edgeloop_intake_posts_total", code="401") == 1
    assert metric(text, "edgeloop_intake_posts_total", code="403") == 1
    accepted = {"kind": "heartbeat", "outcome": "accepted"}
    assert metric(text, "edgeloop_intake_reports_total", **accepted) == 6
    duplicate = {"kind": "heartbeat", "outcome": "duplicate"}
    assert metric(text, "edgeloop_intake_reports_total", **duplicate) == 1
    drift = {"kind": "drift", "outcome": "accepted"}
    assert metric(text, "edgeloop_intake_reports_total", **drift) == 1
    assert metric(text, "edgeloop_intake_alarms_total", site="s2", version="2") == 3
    inputs = "edgeloop_site_drifted_inputs"
    assert metric(text, inputs, site="s2", input="vibration") == 1
    # n2's two-hour-old heartbeat is in the lag histogram's 6 h bucket, not the 1 h one
    lag = "edgeloop_intake_report_lag_seconds_bucket"
    assert metric(text, lag, kind="heartbeat", le="3600.0") == 5
    assert metric(text, lag, kind="heartbeat", le="21600.0") == 6
    assert metric(text, lag, kind="drift", le="60.0") == 1
    assert metric(text, "edgeloop_intake_batch_reports_count") == 7
    changes = "edgeloop_intake_version_changes_total"
    assert metric(text, changes, site="s1", direction="down") == 2  # 3 -> 1, twice
    assert metric(text, changes, site="s1", direction="up") == 1
    assert metric(text, "process_resident_memory_bytes")
    assert "# HELP edgeloop_fleet_silent_nodes Nodes whose newest heartbeat" in text


def test_metrics_can_require_a_reader_token(intake):
    settings, store, tokens = intake
    settings.intake.open_metrics = False
    reader = store.create_token("prometheus", role="reader")
    with serve_app(create_app(settings, store), free_port()) as url:
        bare = httpx.get(f"{url}/metrics")
        as_node = httpx.get(
            f"{url}/metrics", headers={"authorization": f"Bearer {tokens['n1']}"}
        )
        as_reader = httpx.get(
            f"{url}/metrics", headers={"authorization": f"Bearer {reader}"}
        )
    assert bare.status_code == 401 and "reader token" in bare.json()["error"]
    assert as_node.status_code == 403
    assert as_reader.status_code == 200
    assert metric(as_reader.text, "edgeloop_fleet_nodes") is None  # no node yet
