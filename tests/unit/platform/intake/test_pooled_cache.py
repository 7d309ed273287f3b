"""The fleet's pooled wobble is not re-read from every baseline on every POST.

Before: whenever the count of ready baselines changed, the next POST re-read
and re-parsed every node's baseline (881 ms CPU at 10,000 nodes, once per
completed baseline while a fleet onboards). Now a fleet above
``pooled_exact_below`` re-pools at most every ``pooled_refresh_s``, from a
small per-node column.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from edgeloop.monitor.intake.baseline import BaselinePolicy
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop_agent.contracts import DriftWindow, FeatureWindow, Report

T0 = datetime.now(UTC) - timedelta(days=1)
STEADY = [
    {"load": (40, 30, 30), "ambient": (10, 80, 10)},
    {"load": (35, 35, 30), "ambient": (11, 79, 10)},
    {"load": (30, 40, 30), "ambient": (10, 81, 9)},
]
WOBBLY = [
    {"load": (100, 0, 0), "ambient": (100, 0, 0)},
    {"load": (0, 0, 100), "ambient": (0, 0, 100)},
    {"load": (0, 100, 0), "ambient": (0, 100, 0)},
]


def _report(node: str, n: int, counts: dict[str, tuple[int, ...]]) -> Report:
    window = DriftWindow(
        site="s",
        model_name="pump-failure",
        model_version="1",
        window_start=T0 + timedelta(minutes=n),
        window_end=T0 + timedelta(minutes=n + 1),
        rows=100,
        features=tuple(
            FeatureWindow(name=k, counts=v, psi=0.0) for k, v in counts.items()
        ),
        psi_threshold=0.2,
        drifted_share=0.0,
    )
    return Report(key=f"{node}:drift:{n}", node=node, created_at=T0, body=window)


def _onboard(store: IntakeStore, node: str, windows=STEADY) -> None:
    store.accept([_report(node, i, c) for i, c in enumerate(windows)])


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pool_reads(store: IntakeStore) -> list[str]:
    """Statements that read the ready baselines of a whole version."""
    seen: list[str] = []

    @sa.event.listens_for(store.engine, "before_cursor_execute")
    def record(conn, cursor, statement, *args):  # noqa: ARG001
        if "FROM baselines" in statement and "baselines.ready" in statement:
            seen.append(statement)

    return seen


def test_a_large_fleet_re_pools_on_a_timer_not_per_completed_baseline(tmp_path):
    policy = BaselinePolicy(pooled_exact_below=3, pooled_refresh_s=30)
    store = IntakeStore(f"sqlite:///{tmp_path / 'intake.db'}", baseline=policy)
    store._clock = clock = _Clock()
    for i in range(4):
        _onboard(store, f"gw-{i}")
    reads = _pool_reads(store)
    store.accept([_report("gw-0", 10, STEADY[0])])  # a judged window pools once
    assert len(reads) == 1 and store.pooled_outliers("1") == ()
    assert "baselines.state" not in reads[0]  # the wobble column, not every window

    _onboard(store, "gw-bad", WOBBLY)  # completes a baseline: no re-read of the fleet
    for i in range(4):
        store.accept([_report(f"gw-{i}", 11, STEADY[1])])
    assert len(reads) == 1 and store.pooled_outliers("1") == ()

    clock.now += 30  # the interval passed: the next judgement re-pools, once
    store.accept([_report("gw-1", 12, STEADY[2])])
    store.accept([_report("gw-2", 12, STEADY[2])])
    assert len(reads) == 2 and store.pooled_outliers("1") == ("gw-bad",)


def test_a_small_fleet_re_pools_as_soon_as_a_baseline_completes(tmp_path):
    store = IntakeStore(f"sqlite:///{tmp_path / 'intake.db'}")  # exact below 200
    store._clock = _Clock()
    for i in range(3):
        _onboard(store, f"gw-{i}")
    store.accept([_report("gw-0", 10, STEADY[0])])
    assert store.pooled_outliers("1") == ()
    _onboard(store, "gw-bad", WOBBLY)
    store.accept([_report("gw-0", 11, STEADY[1])])
    assert store.pooled_outliers("1") == ("gw-bad",)


def test_baselines_stored_before_the_wobble_column_still_pool(tmp_path):
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    store = IntakeStore(url)
    for i in range(3):
        _onboard(store, f"gw-{i}")
    _onboard(store, "gw-bad", WOBBLY)
    with store.engine.begin() as conn:  # as an older intake left them
        conn.execute(sa.text("UPDATE baselines SET typical = '{}'"))
    assert IntakeStore(url).pooled_outliers("1") == ("gw-bad",)
