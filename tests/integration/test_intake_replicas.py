"""Two intake replicas on one PostgreSQL: concurrent duplicate and distinct
batches, zero errors, every report stored exactly once.

Before: idempotency was check-then-insert, so the same batch arriving at both
replicas at once (an agent retrying through a load balancer) raced: 58 HTTP
500 (``IntegrityError``) in 100 pairs. Now reports, node views and baselines
are written with ``INSERT … ON CONFLICT``: the loser of a race stores nothing
and says so (``duplicates``).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from edgeloop.core.settings import PlatformSettings
from edgeloop.monitor.intake.app import create_app
from edgeloop.monitor.intake.store import IntakeStore

from ..conftest import free_port
from ..pg_server import postgres_server
from ..servers import serve_app
from .test_controller_fleet import drift, heartbeat
from .test_intake import post

pytestmark = [pytest.mark.slow]

NODES = 10
ROUNDS = 10


@pytest.fixture(scope="module")
def database_url(tmp_path_factory):
    with postgres_server(tmp_path_factory.mktemp("pg")) as url:
        yield url


def replica(database_url: str, home) -> tuple[PlatformSettings, IntakeStore]:
    settings = PlatformSettings(home=home)
    settings.intake.database_url = database_url
    settings.intake.quota_reports_per_s = 10_000  # the race, not the budget
    settings.intake.quota_bytes_per_s = 100 * 2**20
    return settings, IntakeStore.from_settings(settings)


def test_two_replicas_take_duplicate_and_distinct_batches_without_errors(
    database_url, tmp_path
):
    sa_, store_a = replica(database_url, tmp_path / "a")
    sb_, store_b = replica(database_url, tmp_path / "b")
    tokens = {f"n{i}": store_a.create_token(f"n{i}") for i in range(NODES)}
    answers: list[tuple[int, dict]] = []
    lock = threading.Lock()
    try:
        with (
            serve_app(create_app(sa_, store_a), free_port()) as url_a,
            serve_app(create_app(sb_, store_b), free_port()) as url_b,
        ):

            def send(url: str, node: str, batch) -> None:
                answer = post(url, tokens[node], batch)
                with lock:
                    answers.append((answer.status_code, answer.json()))

            def pair(node: str, first: tuple, second: tuple) -> None:
                """Two posts of one node's batches, to two replicas, at the same moment."""
                start = threading.Barrier(2)

                def at_once(url: str, batch) -> None:
                    start.wait()
                    send(url, node, batch)

                twins = [
                    threading.Thread(target=at_once, args=job)
                    for job in (first, second)
                ]
                for t in twins:
                    t.start()
                for t in twins:
                    t.join()

            jobs = []
            for r in range(ROUNDS):
                for i in range(NODES):
                    node = f"n{i}"
                    # the same batch to both replicas at once (an agent's retry
                    # through a load balancer) ...
                    same = [drift(node, "1", r, 0.1), heartbeat(node, f"1-{r}")]
                    jobs.append((node, (url_a, same), (url_b, same)))
                    # ... and two distinct batches of the node, one to each
                    jobs.append(
                        (
                            node,
                            (url_a, [drift(node, "2", r, 0.1)]),
                            (url_b, [drift(node, "3", r, 0.1)]),
                        )
                    )
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda job: pair(*job), jobs))
        statuses = {status for status, _ in answers}
        assert statuses == {200}, [a for a in answers if a[0] != 200][:3]
        unique = NODES * ROUNDS * 4  # two in the shared batch, two distinct
        accepted = sum(body["accepted"] for _, body in answers)
        duplicates = sum(body["duplicates"] for _, body in answers)
        rejected = [key for _, body in answers for key in body.get("rejected", [])]
        assert not rejected, rejected[:5]
        assert accepted == unique and duplicates == NODES * ROUNDS * 2
        assert store_a.count() == unique
        assert store_a.count("drift") == NODES * ROUNDS * 3
        # the per-site aggregates were incremented by both replicas at once:
        # every drift window counted once, none lost to a concurrent update
        summary = store_b.drift_summary()
        assert sum(row["windows"] for row in summary) == NODES * ROUNDS * 3
        assert {v.node for v in store_b.fleet()} == set(tokens)
    finally:
        store_a.engine.dispose()
        store_b.engine.dispose()


def test_two_replicas_prune_at_once_and_fold_each_heartbeat_once(
    database_url, tmp_path
) -> None:
    """Retention on both replicas at the same moment: every old heartbeat is
    removed once and counted once in the daily summaries (advisory lock)."""
    import sqlalchemy as sa

    from edgeloop.monitor.intake.tables import heartbeat_days, reports

    from ..unit.platform.intake.test_retention import NOW, _heartbeat

    _, first = replica(database_url, tmp_path / "a")
    _, second = replica(database_url, tmp_path / "b")
    nodes = [f"old-{i}" for i in range(6)]
    sent = [
        _heartbeat(node, NOW - timedelta(days=9, minutes=5 * m), m)
        for node in nodes
        for m in range(50)
    ]
    first.accept(sent)
    with first.engine.begin() as conn:
        conn.execute(
            reports.update()
            .where(reports.c.node.in_(nodes))
            .values(received_at=NOW - timedelta(days=9))
        )
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda s: s.prune(now=NOW), (first, second)))
    assert sum(r.removed.get("heartbeat", 0) for r in results) == len(sent)
    with first.engine.connect() as conn:
        folded = conn.execute(
            sa.select(sa.func.sum(heartbeat_days.c.heartbeats)).where(
                heartbeat_days.c.node.in_(nodes)
            )
        ).scalar_one()
    assert folded == len(sent)
    assert second.accept(sent[:10]) == (0, 10)  # redelivered after pruning
    first.engine.dispose()
    second.engine.dispose()
