"""The loop service: lead, evaluate, retrain once per burst, follow runs across restarts.

Before: nothing ran ``triggers evaluate`` on a schedule, submitted or followed
a retraining, and two processes evaluating the same triggers would each have
retrained. Runs here are real kfp.local runs where the backend is local; the
Kubeflow Pipelines server (which cannot run on this machine) is a scripted
backend behind the same three calls.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.core.settings import PlatformSettings
from edgeloop.loop.backends import KfpBackend, LocalBackend
from edgeloop.loop.lease import LeaderLock
from edgeloop.loop.service import LoopService
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop.provenance.audit import AuditLog
from edgeloop.provenance.registry import ModelRef, Registry
from edgeloop.triggers.engine import TriggerEngine
from edgeloop.triggers.policy import TriggerPolicy

T0 = datetime(2026, 11, 1, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class ScriptedKfp:
    """Stands in for a Kubeflow Pipelines server: runs stay 'running' until told."""

    name = "kfp"

    def __init__(self) -> None:
        self.starts: list[str] = []
        self.states: dict[str, str] = {}
        self.names: dict[str, str] = {}

    def start(self, run_name: str, arguments: dict[str, Any], trigger: dict) -> str:
        run_id = f"run-{len(self.starts) + 1}"
        self.starts.append(run_name)
        self.states[run_id] = "running"
        self.names[run_name] = run_id
        return run_id

    def state(self, run_id: str):
        return self.states[run_id], {"kfp_state": self.states[run_id].upper()}

    def find(self, run_name: str):
        return self.names.get(run_name)


def make_settings(tmp_path, **loop: Any) -> PlatformSettings:
    settings = PlatformSettings(home=tmp_path / "home")
    settings.loop.dataset_uri = "s3://datasets/pumps/"
    settings.loop.retry_backoff_s = 10
    settings.loop.max_attempts = 2
    for key, value in loop.items():
        setattr(settings.loop, key, value)
    return settings


def service(settings, backend, holder="a", clock=None, store=None) -> LoopService:
    store = store or IntakeStore.from_settings(settings)

    def engine() -> TriggerEngine:
        return TriggerEngine(
            store,
            settings.home / "triggers.json",
            TriggerPolicy(cooldown_s=0),
            AuditLog(settings.audit_path()),
        )

    return LoopService(
        settings, engine, backend, store.engine, holder, clock=clock or Clock()
    )


def request(settings, reason: str, at: float, kind: str = "manual", store=None) -> None:
    TriggerEngine(
        store or IntakeStore.from_settings(settings),
        settings.home / "triggers.json",
        TriggerPolicy(cooldown_s=0),
    ).manual(reason, now=at, kind=kind)


def test_a_trigger_storm_on_two_replicas_starts_one_retraining(tmp_path):
    settings = make_settings(tmp_path)
    kfp, clock = ScriptedKfp(), Clock()
    a, b = service(settings, kfp, "a", clock), service(settings, kfp, "b", clock)
    assert a.tick().leader and not b.tick().leader  # sets the decisions floor
    for i in range(3):
        request(settings, f"request {i}", T0 + 1 + i)
    request(settings, "CI: new feature code", T0 + 5, kind="code_change")
    clock.now = T0 + 10
    first = a.tick()
    assert not b.tick().leader
    assert len(kfp.starts) == 1 and first.started == kfp.starts[0]
    (run,) = a.ledger.runs()
    assert run.trigger["reason"] == "request 0" and len(run.coalesced) == 3
    # more requests while the run is active join it instead of starting another
    request(settings, "one more", T0 + 11)
    clock.now = T0 + 20
    a.tick()
    assert len(kfp.starts) == 1 and len(a.ledger.runs()[0].coalesced) == 4
    kfp.states["run-1"] = "succeeded"
    clock.now = T0 + 30
    done = a.tick()
    assert done.finished == {run.run_name: "succeeded"}
    assert a.ledger.runs()[0].state == "succeeded" and len(kfp.starts) == 1
    kinds = [r["kind"] for r in AuditLog(settings.audit_path()).records()]
    assert kinds.count("retraining-started") == 1
    assert kinds.count("retraining-finished") == 1


def test_the_lease_moves_only_when_its_holder_stops_renewing(tmp_path):
    settings = make_settings(tmp_path)
    engine = IntakeStore.from_settings(settings).engine
    a, b = LeaderLock(engine, "a", ttl_s=60), LeaderLock(engine, "b", ttl_s=60)
    start = datetime.now(UTC)
    assert a.acquire(start) and not b.acquire(start + timedelta(seconds=30))
    assert a.acquire(start + timedelta(seconds=50))  # renewed to +110
    assert not b.acquire(start + timedelta(seconds=100))
    assert b.acquire(start + timedelta(seconds=111))  # a stopped renewing
    assert not a.acquire(start + timedelta(seconds=112))
    b.release()
    assert a.acquire(start + timedelta(seconds=113))


def test_a_restarted_service_follows_the_run_it_submitted(tmp_path):
    settings = make_settings(tmp_path)
    kfp, clock = ScriptedKfp(), Clock()
    first = service(settings, kfp, "pod-1", clock)
    first.tick()
    request(settings, "drift at desert", T0 + 1)
    clock.now = T0 + 5
    assert first.tick().started
    # pod-1 is killed; pod-2 starts once the lease has expired
    clock.now = T0 + 5 + settings.loop.lease_ttl_s + 1
    second = service(settings, kfp, "pod-2", clock)
    tick = second.tick()
    assert tick.leader and tick.followed and not tick.started
    kfp.states["run-1"] = "succeeded"
    clock.now += 10
    assert second.tick().finished == {kfp.starts[0]: "succeeded"}
    assert len(kfp.starts) == 1


def test_killed_before_the_run_id_was_written_it_is_found_by_name(tmp_path):
    settings = make_settings(tmp_path)
    kfp, clock = ScriptedKfp(), Clock()
    svc = service(settings, kfp, "pod-1", clock)
    svc.tick()
    # the row is written, the server got the run, the process died before the id
    svc.ledger.create("manual:x", "edgeloop-manual-x", "kfp", {"reason": "x"})
    kfp.start("edgeloop-manual-x", {}, {})
    clock.now += 5
    tick = svc.tick()
    assert tick.followed == "edgeloop-manual-x" and not tick.started
    assert svc.ledger.get("manual:x").run_id == "run-1"
    assert len(kfp.starts) == 1


def test_a_failing_run_is_retried_with_backoff_then_given_up_and_keeps_the_champion(
    tmp_path, registry_with_champion
):
    settings = make_settings(tmp_path, dataset_uri=str(tmp_path / "no-such-dataset"))
    settings.home.mkdir(parents=True)
    shutil.copyfile(
        registry_with_champion["root"] / "mlflow.db", settings.home / "mlflow.db"
    )
    clock = Clock()
    svc = service(settings, LocalBackend(settings), "a", clock)
    svc.tick()
    request(settings, "retrain please", T0 + 1)
    clock.now = T0 + 2
    tick = svc.tick()
    (name,) = tick.finished
    assert tick.finished[name] == "failed"
    (run,) = svc.ledger.runs()
    assert "no such dataset" in run.outcome["error"] and run.attempts == 1
    clock.now = T0 + 8  # within the backoff: nothing happens
    assert not svc.tick().started
    clock.now = T0 + 13
    retried = svc.tick()
    assert retried.started.endswith("-a2")
    assert list(retried.finished.values()) == ["abandoned"]
    clock.now = T0 + 1000  # given up: never again, never a loop
    assert not svc.tick().started and svc.ledger.runs()[0].state == "abandoned"
    champion = Registry(settings.tracking_uri()).resolve(
        ModelRef("pump-failure", alias="champion")
    )
    assert champion == 1


def test_loop_run_once_retrains_on_a_manual_request_with_a_real_local_run(
    tmp_path, fleet_dir, monkeypatch
):
    """Configured only by environment, as the chart configures the Deployment."""
    home = tmp_path / "home"
    monkeypatch.setenv("EDGELOOP_HOME", str(home))
    monkeypatch.setenv("EDGELOOP_LOOP__DATASET_URI", str(fleet_dir))
    monkeypatch.setenv("EDGELOOP_LOOP__HOLDER", "loop-0")
    runner = CliRunner()
    idle = runner.invoke(app, ["-o", "json", "loop", "run", "--once"])
    assert idle.exit_code == 0, idle.output
    assert json.loads(idle.stdout)["started"] == ""
    asked = runner.invoke(app, ["retrain", "--reason", "new pump model at desert"])
    assert asked.exit_code == 0, asked.output
    ran = runner.invoke(app, ["-o", "json", "loop", "run", "--once"])
    assert ran.exit_code == 0, ran.output
    tick = json.loads(ran.stdout)
    assert list(tick["finished"].values()) == ["succeeded"], tick
    status = json.loads(runner.invoke(app, ["-o", "json", "loop", "status"]).stdout)
    (row,) = status["runs"]
    assert row["state"] == "succeeded" and row["outcome"] == "pump-failure:1"
    assert row["trigger"] == "manual: new pump model at desert"
    # the training record carries the trigger: lineage from request to version
    training = AuditLog(home / "audit.jsonl").records("training")
    assert training[-1]["details"]["trigger"]["reason"] == "new pump model at desert"
    again = runner.invoke(app, ["-o", "json", "loop", "run", "--once"])
    assert json.loads(again.stdout)["started"] == ""


def test_kfp_backend_maps_states_and_finds_runs_by_name(tmp_path):
    class Run:
        def __init__(self, state, run_id="r1", error=None):
            self.state, self.run_id, self.error = state, run_id, error

    class Client:
        def __init__(self):
            self.filters = []

        def get_run(self, run_id):
            return {
                "r1": Run("SUCCEEDED"),
                "r2": Run("FAILED", error=type("E", (), {"message": "step boom"})()),
                "r3": Run("RUNNING"),
            }[run_id]

        def list_runs(self, filter, page_size):
            self.filters.append(json.loads(filter))
            return type("L", (), {"runs": [Run("RUNNING", "r3")]})()

    settings = make_settings(tmp_path)
    settings.pipeline.kfp_host = "http://kfp.example"
    client = Client()
    backend = KfpBackend(settings, client=client)
    assert backend.state("r1")[0] == "succeeded"
    assert backend.state("r2") == (
        "failed",
        {"kfp_state": "FAILED", "error": "step boom"},
    )
    assert backend.state("r3")[0] == "running"
    assert backend.find("edgeloop-manual-x") == "r3"
    assert client.filters[0]["predicates"][0]["string_value"] == "edgeloop-manual-x"


# kfp.Client warns that it cannot read the server's version before it fails
@pytest.mark.filterwarnings("ignore:This client only works:FutureWarning")
@pytest.mark.parametrize("host", ["http://127.0.0.1:9"])
def test_unreachable_kfp_is_retryable_and_named(tmp_path, host):
    from edgeloop.core.errors import RetryableError

    settings = make_settings(tmp_path)
    settings.pipeline.kfp_host = host
    with pytest.raises(RetryableError, match="127.0.0.1:9"):
        KfpBackend(settings).state("r1")


def test_health_and_metrics_answer_while_the_service_runs(tmp_path):
    import httpx

    from edgeloop.loop.health import serve_health

    from ..conftest import free_port
    from ..metrics_text import metric

    settings = make_settings(tmp_path)
    kfp, clock = ScriptedKfp(), Clock()
    svc = service(settings, kfp, "pod-7", clock)
    svc.tick()
    request(settings, "drift at desert", T0 + 1)
    clock.now = T0 + 5
    assert svc.tick().started
    kfp.states["run-1"] = "failed"
    clock.now = T0 + 6
    svc.tick()
    port = free_port()
    server = serve_health(port, svc, "127.0.0.1")
    try:
        ok = httpx.get(f"http://127.0.0.1:{port}/healthz")
        assert ok.status_code == 200 and ok.json()["holder"] == "pod-7"
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert httpx.get(f"http://127.0.0.1:{port}/other").status_code == 404
    finally:
        server.shutdown()
        server.server_close()
    fired = metric(text, "edgeloop_trigger_decisions_total", fired="true")
    assert fired == 1  # the manual request, once
    assert metric(text, "edgeloop_retraining_runs_total", state="started") == 1
    assert metric(text, "edgeloop_retraining_runs_total", state="failed") == 1
    assert metric(text, "edgeloop_loop_ticks_total", leader="true") == 3
    assert metric(text, "edgeloop_loop_leader") == 1
    assert metric(text, "edgeloop_loop_last_tick_timestamp_seconds") > 0


def test_a_live_leader_keeps_its_lease_through_a_long_tick(tmp_path):
    """Before: a local training longer than the lease let a second replica take
    over and declare the still-running run lost."""
    import time as _time

    from edgeloop.loop.keepalive import LeaseKeepalive

    settings = make_settings(tmp_path)
    engine = IntakeStore.from_settings(settings).engine
    a = LeaderLock(engine, "pod-a", ttl_s=1.5)
    b = LeaderLock(engine, "pod-b", ttl_s=1.5)
    assert a.acquire()
    keepalive = LeaseKeepalive(a, ttl_s=1.5).start()
    try:
        _time.sleep(4.5)  # three lease lifetimes: pod-a is busy training
        assert not b.acquire() and keepalive.renewals >= 3
    finally:
        keepalive.stop()
    _time.sleep(1.6)  # pod-a is gone: its lease runs out
    assert b.acquire()
