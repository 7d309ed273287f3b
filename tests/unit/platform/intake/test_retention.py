"""Retention: old reports leave the database, heartbeats as daily summaries, nothing counted twice.

Reports are stored with their receive time; here each report is received
when it was created (the receive time is set to it after ``accept``), so the
history spans days as it would on a real intake.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from edgeloop.cli import app as cli
from edgeloop.core.settings import PlatformSettings, RetentionPolicy
from edgeloop.monitor.intake import retention
from edgeloop.monitor.intake.app import create_app
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop.monitor.intake.tables import heartbeat_days, reports
from edgeloop_agent.contracts import DriftWindow, FeatureWindow, Heartbeat, Report

from ....conftest import free_port
from ....servers import serve_app

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
POLICY = RetentionPolicy(heartbeat_days=7, drift_days=20, interval_s=0)


def _heartbeat(node: str, at: datetime, requests: int, version: str = "1") -> Report:
    body = Heartbeat(
        site="s1",
        model_version=version,
        requests=requests,
        errors=requests // 100,
        latency_p99_ms=float(requests % 7),
        outbox_depth=0,
        uptime_s=1,
    )
    key = f"{node}:hb:{int(at.timestamp() * 1e6)}"
    return Report(key=key, node=node, created_at=at, body=body)


def _drift(node: str, at: datetime) -> Report:
    window = DriftWindow(
        site="s1",
        model_name="pump-failure",
        model_version="1",
        window_start=at - timedelta(hours=1),
        window_end=at,
        rows=100,
        features=(FeatureWindow(name="load", counts=(40, 30, 30), psi=0.0),),
        psi_threshold=0.2,
        drifted_share=0.1,
    )
    return Report(
        key=f"{node}:drift:{int(at.timestamp() * 1e6)}",
        node=node,
        created_at=at,
        body=window,
    )


def _accept_as_received(store: IntakeStore, batch: list[Report]) -> tuple[int, int]:
    """Accept, then date each report's receipt to its creation (a live intake)."""
    done = store.accept(batch)
    with store.engine.begin() as conn:
        for r in batch:
            conn.execute(
                reports.update()
                .where(reports.c.key == r.key)
                .values(received_at=r.created_at)
            )
    return done


def _ten_days(store: IntakeStore) -> list[Report]:
    """Two nodes, a heartbeat every 6 hours for 10 days; node n1 moves to v2 on day 5."""
    sent = []
    for node in ("n1", "n2"):
        for i in range(40):
            at = NOW - timedelta(days=10) + timedelta(hours=6 * i)
            version = "2" if node == "n1" and i >= 20 else "1"
            sent.append(_heartbeat(node, at, requests=100 * (i + 1), version=version))
    _accept_as_received(store, sent)
    return sent


def _days(store: IntakeStore) -> dict[tuple[str, str], dict]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(heartbeat_days)).mappings().all()
    return {(r["node"], r["day"]): dict(r) for r in rows}


def test_old_heartbeats_become_one_row_per_node_and_day(tmp_path) -> None:
    store = IntakeStore(f"sqlite:///{tmp_path / 'i.db'}", retention_policy=POLICY)
    sent = _ten_days(store)
    result = store.prune(now=NOW)
    cutoff = NOW - timedelta(days=7)
    old = [r for r in sent if r.created_at < cutoff]
    assert result.removed == {"heartbeat": len(old)}
    assert store.count("heartbeat") == len(sent) - len(old)
    days = _days(store)
    for node in ("n1", "n2"):
        mine = [r for r in old if r.node == node]
        by_day: dict[str, list[Report]] = {}
        for r in mine:
            by_day.setdefault(r.created_at.date().isoformat(), []).append(r)
        for day, beats in by_day.items():
            row = days[(node, day)]
            last = max(beats, key=lambda r: r.created_at)
            assert row["heartbeats"] == len(beats)
            assert row["requests"] == max(b.body.requests for b in beats)
            assert row["model_version"] == last.body.model_version
            assert row["max_p99_ms"] == max(b.body.latency_p99_ms for b in beats)
        assert sum(days[(node, d)]["heartbeats"] for d in by_day) == len(mine)
    assert store.prune(now=NOW).total() == 0  # a second pass finds nothing


def test_a_redelivered_pruned_report_is_a_duplicate_and_a_late_new_one_is_kept(
    tmp_path,
) -> None:
    store = IntakeStore(f"sqlite:///{tmp_path / 'i.db'}", retention_policy=POLICY)
    sent = _ten_days(store)
    store.prune(now=NOW)
    before = _days(store)
    pruned = [
        r for r in sent if r.node == "n1" and r.created_at < NOW - timedelta(days=7)
    ]
    assert store.accept(pruned[-3:]) == (0, 3)  # the agent never saw the ack
    assert _days(store) == before
    assert store.count("heartbeat", "n1") == 20 + 8  # nothing came back
    # a node offline for 9 days sends its buffered heartbeats: new ones are kept
    late = [_heartbeat("n3", NOW - timedelta(days=9, hours=h), 5) for h in (2, 1)]
    assert _accept_as_received(store, late) == (2, 0)
    store.prune(now=NOW)
    day = late[0].created_at.date().isoformat()
    assert _days(store)[("n3", day)]["heartbeats"] == 2


def test_more_heartbeats_for_a_summarised_day_add_to_its_row(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(retention, "CHUNK", 7)  # several transactions per pass
    store = IntakeStore(f"sqlite:///{tmp_path / 'i.db'}", retention_policy=POLICY)
    at = NOW - timedelta(days=8, hours=12)
    day = at.date().isoformat()
    _accept_as_received(
        store, [_heartbeat("n1", at + timedelta(minutes=m), 10 + m) for m in range(10)]
    )
    store.prune(now=NOW)
    # the same node's later heartbeats of that day, received after the pass
    more = [
        _heartbeat("n1", at + timedelta(hours=1, minutes=m), 500, "2") for m in range(4)
    ]
    assert _accept_as_received(store, more) == (4, 0)
    result = store.prune(now=NOW)
    assert result.removed == {"heartbeat": 4}
    row = _days(store)[("n1", day)]
    assert (row["heartbeats"], row["requests"], row["model_version"]) == (14, 500, "2")
    assert row["first_at"].replace(tzinfo=UTC) == at
    assert row["last_at"].replace(tzinfo=UTC) == more[-1].created_at


def test_drift_windows_go_but_the_cohort_view_keeps_them(tmp_path) -> None:
    store = IntakeStore(f"sqlite:///{tmp_path / 'i.db'}", retention_policy=POLICY)
    windows = [_drift("n1", NOW - timedelta(days=d)) for d in range(30, 0, -1)]
    _accept_as_received(store, windows)
    view = store.drift_summary()
    result = store.prune(now=NOW)
    assert result.removed == {"drift": 10}  # 30..21 days old
    assert store.count("drift") == 20
    assert store.drift_summary() == view


def test_zero_keeps_a_kind_forever(tmp_path) -> None:
    keep = RetentionPolicy(
        heartbeat_days=0, drift_days=0, sample_days=0, readings_days=0
    )
    store = IntakeStore(f"sqlite:///{tmp_path / 'i.db'}", retention_policy=keep)
    sent = _ten_days(store)
    assert store.prune(now=NOW + timedelta(days=999)).total() == 0
    assert store.count("heartbeat") == len(sent)


def test_a_serving_intake_prunes_on_its_own(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EDGELOOP_INTAKE__RETENTION__HEARTBEAT_DAYS", "7")
    settings = PlatformSettings()
    store = IntakeStore.from_settings(settings)
    old = [
        _heartbeat("n1", datetime.now(UTC) - timedelta(days=8, minutes=m), 1)
        for m in range(5)
    ]
    _accept_as_received(store, old)
    with serve_app(create_app(settings, store), free_port(), lifespan="on") as url:
        assert httpx.get(f"{url}/healthz").status_code == 200
        deadline = time.monotonic() + 30
        while store.count("heartbeat") and time.monotonic() < deadline:
            time.sleep(0.05)
    assert store.count("heartbeat") == 0
    assert sum(r["heartbeats"] for r in _days(store).values()) == 5


@pytest.mark.parametrize("output", ["json", "table"])
def test_the_cli_prunes_once(tmp_path, monkeypatch, output) -> None:
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path / "home"))
    done = CliRunner().invoke(cli, ["-o", output, "intake", "prune"])
    assert done.exit_code == 0, done.output
    assert "no intake database yet" in done.output
    store = IntakeStore.from_settings(PlatformSettings())
    old = [
        _heartbeat("n1", datetime.now(UTC) - timedelta(days=8, minutes=m), 1)
        for m in range(3)
    ]
    _accept_as_received(store, old)
    done = CliRunner().invoke(cli, ["-o", output, "intake", "prune"])
    assert done.exit_code == 0, done.output
    assert store.count("heartbeat") == 0
    if output == "json":
        assert '"removed_heartbeat": 3' in done.output


def test_a_bad_retention_setting_is_one_line_naming_the_variable(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EDGELOOP_INTAKE__RETENTION__HEARTBEAT_DAYS", "-1")
    done = CliRunner().invoke(cli, ["intake", "prune"])
    assert done.exit_code == 1
    assert done.stderr.strip().splitlines() == [
        "error: setting EDGELOOP_INTAKE__RETENTION__HEARTBEAT_DAYS: "
        "Input should be greater than or equal to 0 (got '-1')"
    ]
