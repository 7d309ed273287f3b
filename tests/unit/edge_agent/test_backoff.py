"""Agent retries follow the settings' schedule, spread by jitter."""

from edgeloop_agent.backoff import Backoff


def test_delays_follow_the_schedule_and_the_last_repeats():
    exact = Backoff((1.0, 2.0, 5.0), jitter=0)
    assert [exact.delay(n) for n in (1, 2, 3, 4, 10)] == [1.0, 2.0, 5.0, 5.0, 5.0]


def test_jitter_spreads_a_fleet_within_bounds():
    backoff = Backoff((1.0, 60.0), jitter=0.5)
    firsts = [backoff.delay(1) for _ in range(200)]
    lasts = [backoff.delay(7) for _ in range(200)]
    assert all(1.0 <= d <= 1.5 for d in firsts)
    assert all(60.0 <= d <= 90.0 for d in lasts)
    # 200 agents reconnecting at once do not retry in lock-step
    assert len({round(d, 3) for d in lasts}) > 100
