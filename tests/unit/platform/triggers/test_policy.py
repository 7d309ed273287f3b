from datetime import UTC, datetime

import pytest

from edgeloop.triggers.policy import (
    TriggerPolicy,
    TriggerState,
    WindowSummary,
    cron_matches,
    evaluate_drift,
    evaluate_new_data,
    evaluate_performance,
    evaluate_schedule,
    manual,
)

T0 = 1_800_000_000.0  # a multiple of 300
POLICY = TriggerPolicy(
    drift_share=0.3, node_fraction=0.5, consecutive=3, cooldown_s=3600, window_s=300
)


def round_(
    i: int,
    shares: dict[str, float],
    cohort="offshore",
    flags: dict[str, tuple] | None = None,
):
    return [
        WindowSummary(
            key=f"{n}:{i}",
            node=n,
            cohort=cohort,
            window_end=T0 + i * 300 + 10,
            drifted_share=s,
            quality_flags=(flags or {}).get(n, ()),
        )
        for n, s in shares.items()
    ]


DRIFTING = {"a": 0.6, "b": 0.5, "c": 0.1, "d": 0.7}
CALM = {"a": 0.0, "b": 0.1, "c": 0.0, "d": 0.05}


def test_fires_after_k_consecutive_drifted_windows_with_evidence():
    state = TriggerState()
    assert (
        evaluate_drift(
            POLICY, state, round_(0, DRIFTING) + round_(1, DRIFTING), T0 + 700
        )
        == []
    )
    (decision,) = evaluate_drift(POLICY, state, round_(2, DRIFTING), T0 + 1000)
    assert decision.fired and decision.kind == "drift" and decision.cohort == "offshore"
    assert (
        decision.evidence["drifted_nodes"] == ["a", "b", "d"]
        and decision.evidence["reporting"] == 4
    )
    assert decision.evidence["reports"] == ["a:2", "b:2", "d:2"]


def test_a_calm_window_resets_the_count():
    state = TriggerState()
    evaluate_drift(
        POLICY, state, round_(0, DRIFTING) + round_(1, DRIFTING) + round_(2, CALM), T0
    )
    assert evaluate_drift(POLICY, state, round_(3, DRIFTING), T0 + 1200) == []
    assert state.consecutive["offshore"] == 1


def test_one_trigger_per_storm_hysteresis_then_cooldown():
    state = TriggerState()
    storm = [w for i in range(10) for w in round_(i, DRIFTING)]
    fired = [d for d in evaluate_drift(POLICY, state, storm, T0 + 3000) if d.fired]
    assert len(fired) == 1  # disarmed after firing, still drifting: nothing more
    evaluate_drift(
        POLICY, state, round_(10, CALM), T0 + 3300
    )  # below the release fraction: re-armed
    again = evaluate_drift(
        POLICY,
        state,
        round_(11, DRIFTING) + round_(12, DRIFTING) + round_(13, DRIFTING),
        T0 + 4000,
    )
    assert [d.fired for d in again] == [False] and "cooldown" in again[0].reason
    late = evaluate_drift(
        POLICY, state, [w for i in range(14, 17) for w in round_(i, CALM)], T0 + 9000
    )
    assert late == []


def test_sensor_faults_are_alerts_not_drift():
    state = TriggerState()
    flags = {
        "a": ("bearing_temp:stuck",),
        "b": ("flow_rate:nan",),
        "d": ("vibration_rms:spikes",),
    }
    windows = [w for i in range(5) for w in round_(i, DRIFTING, flags=flags)]
    decisions = evaluate_drift(POLICY, state, windows, T0 + 2000)
    assert not any(d.fired for d in decisions)
    alerts = [d for d in decisions if d.kind == "data_quality"]
    assert {d.evidence["node"] for d in alerts} == {"a", "b", "d"}
    assert "not counted as drift" in alerts[0].reason


def test_cohorts_are_judged_separately():
    state = TriggerState()
    windows = [
        w
        for i in range(3)
        for w in round_(i, DRIFTING, "desert") + round_(i, CALM, "arctic")
    ]
    fired = [
        d.cohort for d in evaluate_drift(POLICY, state, windows, T0 + 1000) if d.fired
    ]
    assert fired == ["desert"]


def test_late_out_of_order_windows_land_in_their_own_round():
    state = TriggerState()
    windows = round_(2, DRIFTING) + round_(0, DRIFTING) + round_(1, DRIFTING)
    assert [d.fired for d in evaluate_drift(POLICY, state, windows, T0 + 1000)] == [
        True
    ]


def test_cron_schedule_fires_once_per_matching_minute():
    assert cron_matches(
        "0 3 * * 1", datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    )  # a Monday
    assert not cron_matches("0 3 * * 1", datetime(2026, 11, 24, 3, 0, tzinfo=UTC))
    assert cron_matches("*/15 * * * *", datetime(2026, 1, 1, 7, 45, tzinfo=UTC))
    with pytest.raises(ValueError, match="expected 5 fields"):
        cron_matches("daily", datetime(2026, 1, 1, tzinfo=UTC))
    policy = POLICY.model_copy(update={"schedule": "0 * * * *", "cooldown_s": 0})
    state = TriggerState()
    at = datetime(2026, 1, 1, 5, 0, 20, tzinfo=UTC).timestamp()
    assert [d.fired for d in evaluate_schedule(policy, state, at)] == [True]
    assert evaluate_schedule(policy, state, at + 10) == []


def test_due_times_missed_during_downtime_fire_once_after_it():
    policy = POLICY.model_copy(update={"schedule": "0 * * * *", "cooldown_s": 0})
    state = TriggerState()
    at = datetime(2026, 1, 1, 5, 0, 20, tzinfo=UTC).timestamp()
    assert evaluate_schedule(policy, state, at)[0].fired
    # the loop service was down from 05:01 to 09:30: 06, 07, 08 and 09 passed
    later = datetime(2026, 1, 1, 9, 30, tzinfo=UTC).timestamp()
    decisions = evaluate_schedule(policy, state, later)
    assert [d.fired for d in decisions] == [True]
    assert decisions[0].evidence["missed"] == 4
    assert decisions[0].evidence["due_at"] == "2026-01-01T09:00:00+00:00"
    assert "fired once" in decisions[0].reason
    # evaluated again within the same hour: nothing is due
    assert evaluate_schedule(policy, state, later + 600) == []
    # a schedule that was not due at the first evaluation does not fire then
    fresh = TriggerState()
    assert evaluate_schedule(policy, fresh, later) == []


def test_a_bad_cron_is_refused_when_the_policy_is_read():
    with pytest.raises(ValueError, match="expected 5 fields"):
        TriggerPolicy(schedule="daily")
    with pytest.raises(ValueError, match=r"cron '61 \* \* \* \*'"):
        TriggerPolicy(schedule="61 * * * *")


def test_new_data_performance_and_manual():
    policy = POLICY.model_copy(update={"new_labelled_rows": 1000})
    state = TriggerState()
    assert evaluate_new_data(policy, state, 999, T0) == []
    assert evaluate_new_data(policy, state, 1500, T0)[0].fired
    dropped = evaluate_performance(policy, state, 0.55, 0.80, "3", T0 + 60)
    assert not dropped[0].fired and "cooldown" in dropped[0].reason
    assert evaluate_performance(policy, state, 0.78, 0.80, "3", T0 + 7200) == []
    decision = manual(state, "new seal supplier", T0 + 100)
    assert decision.fired and decision.kind == "manual"
    assert [d.kind for d in state.decisions] == ["new_data", "performance", "manual"]
