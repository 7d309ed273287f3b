"""Drift judged against a node's own baseline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edgeloop.monitor.intake.baseline import (
    Baseline,
    BaselinePolicy,
    observe,
    pooled_typical,
)
from edgeloop_agent.contracts import DriftWindow, FeatureWindow

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def window(**counts: tuple[int, ...]) -> DriftWindow:
    return DriftWindow(
        site="desert-02",
        model_name="pump-failure",
        model_version="1",
        window_start=T0,
        window_end=T0 + timedelta(days=1),
        rows=sum(next(iter(counts.values()))),
        features=tuple(
            FeatureWindow(name=n, counts=c, psi=9.9) for n, c in counts.items()
        ),
        psi_threshold=0.2,
        drifted_share=1.0,
    )


# "load" swings between windows (regimes); "ambient" is steady
BASELINE = [
    window(load=(80, 10, 10), ambient=(10, 80, 10)),
    window(load=(10, 80, 10), ambient=(12, 78, 10)),
    window(load=(10, 10, 80), ambient=(9, 81, 10)),
]


@pytest.fixture()
def ready() -> Baseline:
    state = Baseline()
    for w in BASELINE:
        assert observe(state, w, BaselinePolicy()).drifted_share is None
    assert state.ready()
    return state


def test_a_baseline_learns_each_inputs_usual_wobble(ready):
    assert ready.typical["load"] > 1.0 > 0.05 > ready.typical["ambient"]


def test_a_steady_input_that_jumps_drifts_and_a_swinging_one_that_swings_does_not(
    ready,
):
    judged = observe(
        ready, window(load=(70, 20, 10), ambient=(0, 5, 95)), BaselinePolicy()
    )
    assert judged.drifted == ("ambient",) and judged.drifted_share == 0.5
    assert judged.scores["ambient"] > 1.0


def test_nothing_drifts_in_a_window_like_the_baseline(ready):
    judged = observe(
        ready, window(load=(30, 40, 30), ambient=(11, 79, 10)), BaselinePolicy()
    )
    assert judged.drifted == () and judged.drifted_share == 0.0


def test_state_round_trips_through_json(ready):
    again = Baseline.from_json(ready.to_json())
    assert again.typical == ready.typical and again.windows == ready.windows


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError, match="windows"):
        BaselinePolicy(windows=1)
    with pytest.raises(ValueError, match="margin"):
        BaselinePolicy(margin=0.5)


def steady_node() -> Baseline:
    """A node whose 'ambient' barely moves between its baseline windows."""
    state = Baseline()
    for w in (
        window(load=(40, 30, 30), ambient=(10, 80, 10)),
        window(load=(35, 35, 30), ambient=(11, 79, 10)),
        window(load=(30, 40, 30), ambient=(10, 81, 9)),
    ):
        observe(state, w, BaselinePolicy())
    return state


def wobbly_node() -> Baseline:
    """A faulty node whose windows jump between extreme bins on every input."""
    state = Baseline()
    for w in (
        window(load=(100, 0, 0), ambient=(100, 0, 0)),
        window(load=(0, 0, 100), ambient=(0, 0, 100)),
        window(load=(0, 100, 0), ambient=(0, 100, 0)),
    ):
        observe(state, w, BaselinePolicy())
    return state


def test_one_wobbly_node_cannot_blind_drift_detection_for_the_fleet():
    """Before: the 0.9 quantile over the baselines let the faulty node set every
    node's threshold, and a shifted window scored 0.0 instead of 0.5."""
    policy = BaselinePolicy()
    nodes = {f"gw-{i}": steady_node() for i in range(5)}
    nodes["gw-bad"] = wobbly_node()
    pooled = pooled_typical({n: b.typical for n, b in nodes.items()}, policy)
    assert pooled.outliers == ("gw-bad",)
    shifted = window(load=(35, 35, 30), ambient=(0, 5, 95))
    judged = observe(nodes["gw-0"], shifted, policy, pooled.typical)
    assert judged.drifted == ("ambient",) and judged.drifted_share == 0.5


def test_nothing_is_pooled_below_the_minimum_node_count():
    policy = BaselinePolicy(pooled_min_nodes=3)
    two = {"a": steady_node().typical, "b": steady_node().typical}
    assert pooled_typical(two, policy).typical == {}
    three = {**two, "c": steady_node().typical}
    assert set(pooled_typical(three, policy).typical) == {"ambient", "load"}
