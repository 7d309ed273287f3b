"""The controller run loop: retry delays are honoured, one bad file spares the rest."""

import shutil
from pathlib import Path

from edgeloop.core.errors import PermanentError, RetryableError
from edgeloop.rollout.controller import StatusStore
from edgeloop.rollout.runner import ControllerLoop

SAMPLE = (
    Path(__file__).resolve().parents[4]
    / "manifests"
    / "samples"
    / "edgerollout-pumps.yaml"
)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Failing:
    """A reconciler whose registry is down (retryable) or whose input is bad (permanent)."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def reconcile(self, rollout, dry_run=False):
        self.calls += 1
        raise self.error


def _loop(tmp_path, reconciler, clock, lines):
    rollouts = tmp_path / "rollouts"
    rollouts.mkdir()
    shutil.copy(SAMPLE, rollouts / "pumps.yaml")
    return ControllerLoop(
        reconciler,
        StatusStore(tmp_path / "status"),
        rollouts,
        interval=5.0,
        report=lines.append,
        clock=clock,
    )


def test_a_retryable_error_is_not_retried_before_its_delay(tmp_path):
    clock, lines = _Clock(), []
    reconciler = _Failing(
        RetryableError("registry http://mlflow:5000 unreachable", delay=30)
    )
    loop = _loop(tmp_path, reconciler, clock, lines)
    assert loop.tick() == []
    assert reconciler.calls == 1
    assert "will retry in 30s" in lines[-1]
    for now in (5.0, 10.0, 29.9):  # ticks on the interval, but the file is not due
        clock.now = now
        loop.tick()
    assert reconciler.calls == 1
    clock.now = 30.0
    loop.tick()
    assert reconciler.calls == 2


def test_the_wait_is_the_interval_or_sooner_when_a_retry_is_due(tmp_path):
    clock, lines = _Clock(), []
    loop = _loop(tmp_path, _Failing(RetryableError("down", delay=2)), clock, lines)
    loop.tick()
    assert loop.next_wait() == 2.0
    clock.now = 1.5
    assert loop.next_wait() == 0.5
    loop.not_before.clear()
    assert loop.next_wait() == 5.0


def test_a_permanent_error_is_reported_and_tried_again_next_interval(tmp_path):
    clock, lines = _Clock(), []
    reconciler = _Failing(PermanentError("rollout pumps: no such model"))
    loop = _loop(tmp_path, reconciler, clock, lines)
    loop.tick()
    clock.now = 5.0
    loop.tick()
    assert reconciler.calls == 2
    assert lines == ["pumps.yaml: rollout pumps: no such model"] * 2
    assert loop.not_before == {}
