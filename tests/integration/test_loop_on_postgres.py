"""The chart's external-PostgreSQL mode: intake reports, the loop's lease and run
records on a real PostgreSQL server (two loop replicas, one leader, one run)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edgeloop.core.settings import PlatformSettings
from edgeloop.loop.lease import LeaderLock
from edgeloop.monitor.intake.store import IntakeStore

from ..pg_server import postgres_server
from .test_controller_fleet import drift
from .test_loop_service import T0, Clock, ScriptedKfp, request, service

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def database_url(tmp_path_factory):
    with postgres_server(tmp_path_factory.mktemp("pg")) as url:
        yield url


def test_intake_store_and_drift_reads_on_postgres(database_url, tmp_path):
    settings = PlatformSettings(home=tmp_path / "home")
    settings.intake.database_url = database_url
    store = IntakeStore.from_settings(settings)
    try:
        batch = [drift("n1", "1", 0, 0.3), drift("n1", "1", 1, 0.2)]
        assert store.accept(batch)[0] == 2
        assert store.accept(batch)[0] == 0  # idempotent by key
        assert store.drift_by_node("1") == {"n1": 0.2}
    finally:
        store.engine.dispose()


def test_two_loop_replicas_on_postgres_start_one_run(database_url, tmp_path):
    settings = PlatformSettings(home=tmp_path / "home")
    settings.intake.database_url = database_url
    settings.loop.dataset_uri = "s3://datasets/pumps/"
    store = IntakeStore.from_settings(settings)
    try:
        start = datetime.now(UTC)
        a = LeaderLock(store.engine, "a", "pg-test")
        b = LeaderLock(store.engine, "b", "pg-test")
        assert a.acquire(start) and not b.acquire(start + timedelta(seconds=1))
        assert b.acquire(start + timedelta(seconds=61))

        kfp, clock = ScriptedKfp(), Clock()
        first = service(settings, kfp, "pod-a", clock, store)
        second = service(settings, kfp, "pod-b", clock, store)
        assert first.tick().leader and not second.tick().leader
        for i in range(3):
            request(settings, f"storm {i}", T0 + 1 + i, store=store)
        clock.now = T0 + 10
        first.tick()
        second.tick()
        assert len(kfp.starts) == 1 and len(first.ledger.runs()) == 1
    finally:
        store.engine.dispose()
