"""The intake on 127.0.0.1 with a real store, fed by a real agent."""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from typer.testing import CliRunner

from edgeloop.cli import app as cli
from edgeloop.core.settings import PlatformSettings
from edgeloop.monitor.intake import collect
from edgeloop.monitor.intake.app import create_app
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop.rollout.fleet import IntakeFleet
from edgeloop_agent.api.app import create_app as create_agent
from edgeloop_agent.contracts import Heartbeat, Report, ReportBatch

from ..conftest import free_port
from ..servers import serve_app
from .test_agent_http import SENSORS, activate, settings_for, wait_for


def heartbeat_report(node: str, key: str, version: str = "1") -> Report:
    return Report(
        key=key,
        node=node,
        created_at=datetime.now(UTC),
        body=Heartbeat(
            site="s",
            model_version=version,
            requests=10,
            errors=1,
            outbox_depth=0,
            uptime_s=1,
        ),
    )


def post(
    url: str, token: str, reports: list[Report], timeout: float = 5.0
) -> httpx.Response:
    body = ReportBatch(reports=tuple(reports)).model_dump_json()
    return httpx.post(
        f"{url}/v1/reports",
        content=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        },
        timeout=timeout,
    )


@pytest.fixture()
def intake(tmp_path):
    settings = PlatformSettings(home=tmp_path / "home")
    settings.intake.max_body_bytes = 50_000
    store = IntakeStore.from_settings(settings)
    with serve_app(create_app(settings, store), free_port()) as url:
        yield url, store, settings


def test_auth_size_shape_and_idempotency(intake):
    url, store, _ = intake
    token = store.create_token("node-a")
    other = store.create_token("node-b")
    assert (
        post(url, "nope", [heartbeat_report("node-a", "node-a:hb:1")]).status_code
        == 401
    )
    missing = httpx.post(f"{url}/v1/reports", json={"reports": []})
    assert missing.status_code == 401 and missing.json() == {
        "error": "unknown or missing bearer token"
    }
    forbidden = post(url, other, [heartbeat_report("node-a", "node-a:hb:1")])
    assert (
        forbidden.status_code == 403
        and "is for node 'node-a', token is for 'node-b'" in forbidden.json()["error"]
    )
    bad = httpx.post(
        f"{url}/v1/reports",
        content=b'{"reports":[{"key":"k"}]}',
        headers={"Authorization": f"Bearer {token}"},
    )
    assert bad.status_code == 422 and bad.json()["error"].startswith("reports.0.key:")
    big = httpx.post(
        f"{url}/v1/reports",
        content=b"x" * 60_000,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert big.status_code == 413
    first = post(url, token, [heartbeat_report("node-a", "node-a:hb:1")])
    assert first.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    again = post(
        url,
        token,
        [
            heartbeat_report("node-a", "node-a:hb:1"),
            heartbeat_report("node-a", "node-a:hb:2"),
        ],
    )
    assert again.json() == {"accepted": 1, "duplicates": 1, "rejected": []}
    assert store.count("heartbeat") == 2


def test_reports_survive_a_restart(intake, tmp_path):
    url, store, settings = intake
    token = store.create_token("node-a")
    post(url, token, [heartbeat_report("node-a", "node-a:hb:1", version="7")])
    reopened = IntakeStore(settings.intake_database_url())
    assert reopened.fleet()[0].active_version == "7"
    assert reopened.accept([heartbeat_report("node-a", "node-a:hb:1")]) == (0, 1)
    assert reopened.node_for(token) == "node-a"


def test_agent_reports_land_in_the_fleet_view_the_controller_reads(
    intake, tmp_path, registry_with_champion
):
    url, store, platform = intake
    token = store.create_token("node-a")
    bundle = tmp_path / "bundle"
    shutil.copytree(registry_with_champion["run"].bundle_dir, bundle)
    settings = settings_for(tmp_path / "agent", url)
    # the token as the cluster delivers it: a Secret key per node, mounted as files
    (tmp_path / "tokens").mkdir()
    (tmp_path / "tokens" / "node-a").write_text(token + "\n")
    settings.outbox.token = ""
    settings.outbox.token_file = str(tmp_path / "tokens" / "{node}")
    settings.outbox.upload_readings = True
    first = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
    with serve_app(create_agent(settings), free_port(), lifespan="on") as agent:
        activate(agent, settings, bundle)
        httpx.post(
            f"{agent}/predict",
            json={
                "readings": [
                    {
                        "entity": f"p{i % 3}",
                        "values": SENSORS,
                        "timestamp": (first + timedelta(minutes=5 * i)).isoformat(),
                    }
                    for i in range(40)
                ]
            },
        )
        wait_for(lambda: store.count("drift") >= 2, what="drift windows at the intake")
        wait_for(
            lambda: store.count("readings") >= 1, what="readings batch at the intake"
        )
        settings.outbox.heartbeat_interval_s = 0.2
        wait_for(
            lambda: any(n.active_version == "1" for n in store.fleet()),
            what="heartbeat with version",
        )
    (row,) = store.fleet()
    assert (
        row.node == "node-a"
        and row.site == "offshore-01"
        and row.drifted_share is not None
    )
    # the readings were kept as Parquet partitions by model, site and day (the
    # 40 readings at 5-minute steps from 23:00 span two days), each row once
    parts = collect.partitions(platform.collect_root(), "readings", "pump-failure")
    assert [(p.site, p.day) for p in parts] == [
        ("offshore-01", "2026-03-01"),
        ("offshore-01", "2026-03-02"),
    ]
    rows = collect.load(parts)
    assert len(rows) == 40 and rows["timestamp"].is_unique
    assert set(rows["pump_id"]) == {"p0", "p1", "p2"}
    assert rows["model_version"].eq("1").all() and rows["score"].between(0, 1).all()
    assert collect.partitions(platform.collect_root(), "samples", "pump-failure")
    reader = store.create_token("dashboards", role="reader")
    (cohort,) = httpx.get(
        f"{url}/v1/cohorts", headers={"Authorization": f"Bearer {reader}"}
    ).json()
    assert cohort["site"] == "offshore-01" and cohort["nodes"] == 1
    assert cohort["versions"] == {"1": 1} and cohort["drift"][0]["windows"] >= 2
    (observed,) = IntakeFleet(url, token=reader).observe()
    assert (
        observed.node == "node-a"
        and observed.active_version == "1"
        and observed.last_seen is not None
    )


def test_token_cli_prints_a_working_token(intake, monkeypatch):
    url, store, settings = intake
    monkeypatch.setenv("EDGELOOP_HOME", str(settings.home))
    result = CliRunner().invoke(
        cli, ["-o", "json", "intake", "token", "create", "gw-offshore-01a"]
    )
    assert result.exit_code == 0, result.output
    token = json.loads(result.stdout)["token"]
    assert store.node_for(token) == "gw-offshore-01a"
    bad = CliRunner().invoke(cli, ["intake", "token", "create", "has space"])
    assert bad.exit_code == 1 and "invalid node name" in bad.stderr


class _HeldStore(IntakeStore):
    """A store whose next ``accept`` waits until released: a slow commit, on demand."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.hold_node = ""
        self.held = 0  # the held node's batches inside ``accept`` right now
        self.counting = threading.Lock()

    def accept(self, reports):
        if reports and reports[0].node == self.hold_node:
            with self.counting:
                self.held += 1
            self.entered.set()
            self.release.wait(60)
            with self.counting:
                self.held -= 1
        return super().accept(reports)


@contextlib.contextmanager
def _first_post_held(
    url: str, store: _HeldStore, token: str, node: str
) -> Iterator[list[httpx.Response]]:
    """``node``'s heartbeat ``hb:1`` POSTed and held inside the store for the
    block; then released, and its answer in the list yielded."""
    answers: list[httpx.Response] = []
    held = threading.Thread(
        target=lambda: answers.append(
            post(url, token, [heartbeat_report(node, f"{node}:hb:1")])
        )
    )
    held.start()
    try:
        assert store.entered.wait(30)
        yield answers
    finally:
        store.release.set()
        held.join(30)


def _second_post_waits_while_the_first_holds_the_store(settings: PlatformSettings):
    """Node A's POST held in the store, node B's sent after it: (B still waiting
    after 1 s, /healthz status meanwhile, both answers once A is released)."""
    store = _HeldStore(settings.intake_database_url())
    slow, fast = store.create_token("node-slow"), store.create_token("node-fast")
    store.hold_node = "node-slow"
    with serve_app(create_app(settings, store), free_port()) as url:
        answers: dict[str, httpx.Response] = {}

        def send(name: str, token: str) -> None:
            answers[name] = post(url, token, [heartbeat_report(name, f"{name}:hb:1")])

        held = threading.Thread(target=send, args=("node-slow", slow))
        held.start()
        waiting = threading.Thread(target=send, args=("node-fast", fast))
        try:
            assert store.entered.wait(30)
            waiting.start()
            waiting.join(1.0)  # a bound: B cannot get past while A is held
            still_waiting = waiting.is_alive() and "node-fast" not in answers
            health = httpx.get(f"{url}/healthz", timeout=30)
        finally:
            store.release.set()
            held.join(30)
            waiting.join(30)
    return still_waiting, health.status_code, answers


@pytest.mark.parametrize(
    "limit",
    [
        # a POST past the admission limit waits its turn (not refused), then is stored
        "max_posts_in_flight",
        # a POST waits for a free store thread; the event loop stays free
        "store_threads",
    ],
)
def test_a_post_over_a_limit_waits_its_turn_and_health_answers(tmp_path, limit):
    """``intake.max_posts_in_flight`` and ``intake.store_threads`` at 1."""
    settings = PlatformSettings(home=tmp_path / "home")
    setattr(settings.intake, limit, 1)
    waited, health, answers = _second_post_waits_while_the_first_holds_the_store(
        settings
    )
    assert waited and health == 200
    for name in ("node-slow", "node-fast"):
        assert answers[name].json() == {"accepted": 1, "duplicates": 0, "rejected": []}


def test_one_token_posts_one_batch_at_a_time_and_the_others_pass(tmp_path):
    """A node flooding on several connections has one POST in the store at a
    time (``intake.max_posts_in_flight_per_token``); the rest of the fleet
    passes while its others wait, and none of them is lost."""
    settings = PlatformSettings(home=tmp_path / "home")
    store = _HeldStore(settings.intake_database_url())
    flood, other = store.create_token("node-flood"), store.create_token("node-b")
    store.hold_node = "node-flood"
    with serve_app(create_app(settings, store), free_port()) as url:
        answers: dict[str, httpx.Response] = {}

        def send(key: str) -> None:
            answers[key] = post(url, flood, [heartbeat_report("node-flood", key)])

        first = threading.Thread(target=send, args=("node-flood:hb:1",))
        first.start()
        queued = [
            threading.Thread(target=send, args=(f"node-flood:hb:{n}",)) for n in (2, 3)
        ]
        try:
            assert store.entered.wait(30)
            for thread in queued:
                thread.start()
            queued[0].join(1.0)  # a bound: the flood's others cannot get in
            inside_at_once = store.held
            passed = post(url, other, [heartbeat_report("node-b", "node-b:hb:1")])
        finally:
            store.release.set()
            for thread in (first, *queued):
                thread.join(30)
    assert inside_at_once == 1
    assert passed.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert {k: a.json()["accepted"] for k, a in answers.items()} == {
        "node-flood:hb:1": 1,
        "node-flood:hb:2": 1,
        "node-flood:hb:3": 1,
    }
    assert store.count("heartbeat") == 4


def test_a_post_whose_client_left_while_it_waited_stores_nothing_quietly(
    tmp_path, capfd
):
    """An agent past its timeout closes the connection of a queued POST: when
    its turn comes it is dropped (the agent delivers it again), no traceback."""
    settings = PlatformSettings(home=tmp_path / "home")
    store = _HeldStore(settings.intake_database_url())
    token = store.create_token("node-a")
    store.hold_node = "node-a"
    with serve_app(create_app(settings, store), free_port()) as url:
        with (
            _first_post_held(url, store, token, "node-a") as answers,
            pytest.raises(httpx.ReadTimeout),  # queued behind the held one
        ):
            post(url, token, [heartbeat_report("node-a", "node-a:hb:2")], 0.5)
        store.hold_node = ""
        # queued behind the abandoned one: answered once that one is done
        after = post(url, token, [heartbeat_report("node-a", "node-a:hb:3")])
    assert answers[0].json()["accepted"] == 1 and after.json()["accepted"] == 1
    assert store.count("heartbeat") == 2  # hb:1 and hb:3; hb:2 left with its client
    assert "Traceback" not in capfd.readouterr().err


def test_a_slow_commit_does_not_stall_health_checks_or_other_nodes(tmp_path):
    """Store work runs off the event loop (before: the loop waited for the commit)."""
    settings = PlatformSettings(home=tmp_path / "home")
    store = _HeldStore(settings.intake_database_url())
    slow, fast = store.create_token("node-slow"), store.create_token("node-fast")
    store.hold_node = "node-slow"
    with (
        serve_app(create_app(settings, store), free_port()) as url,
        _first_post_held(url, store, slow, "node-slow") as answers,
    ):
        health = httpx.get(f"{url}/healthz", timeout=30)
        other = post(url, fast, [heartbeat_report("node-fast", "node-fast:hb:1")], 30)
        still_held = not store.release.is_set()
    assert still_held and health.status_code == 200
    assert other.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert answers[0].json() == {"accepted": 1, "duplicates": 0, "rejected": []}
