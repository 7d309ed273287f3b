"""Retraining trigger policy: pure, deterministic, every decision with its evidence.

Drift fires when, in a cohort, the share of drifted model inputs (judged
against each node's own baseline, see :mod:`edgeloop.monitor.intake.baseline`) is at least
``drift_share`` on at least ``node_fraction`` of the reporting nodes, for
``consecutive`` windows in a row. Then the cohort is disarmed until its drifting
node fraction falls below ``release_fraction`` (hysteresis), and no trigger of
any kind fires within ``cooldown_s`` of the last one (a storm of reports gives
one retraining per cooldown). Many nodes saying the same thing give one trigger.

Sensor faults are not drift: a window whose data-quality flags (NaN, out of
range, stuck, spikes) explain it raises a ``data_quality`` alert for that node
and is left out of the drift count.

Also: a schedule (5-field cron, UTC), new labelled data, a performance drop
measured from delayed labels, and manual requests. No I/O, no clock of its own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from edgeloop.monitor.intake.views import WindowSummary

Kind = Literal[
    "drift",
    "data_quality",
    "schedule",
    "new_data",
    "performance",
    "manual",
    "code_change",
]


class TriggerPolicy(BaseModel):
    """Thresholds of the trigger policy (settings data, not constants in loops)."""

    model_config = ConfigDict(extra="forbid")

    drift_share: float = Field(0.3, gt=0, le=1)
    """A node's window counts as drifted at this share of drifted inputs or more."""
    node_fraction: float = Field(0.5, gt=0, le=1)
    """Share of a cohort's reporting nodes that must be drifted in a window."""
    consecutive: int = Field(3, ge=1)
    """Windows in a row a cohort must be drifted before it fires."""
    release_fraction: float = Field(0.2, ge=0, le=1)
    """A fired cohort re-arms once its drifted node share falls below this."""
    cooldown_s: float = Field(6 * 3600, ge=0)
    """No trigger fires within this many seconds of the previous one."""
    window_s: float = Field(300, gt=0)
    """Windows are grouped into rounds of this length (the agents' window_seconds)."""
    schedule: str = ""
    """Cron expression (minute hour day month weekday, UTC); empty: no schedule.

    Due times missed while nothing evaluated (downtime) fire once, at the next
    evaluation, with the number missed as evidence."""
    new_labelled_rows: int = Field(0, ge=0)
    """Fire after this many new labelled rows since the last training; 0 disables."""
    max_metric_drop: float = Field(0.1, ge=0, le=1)
    """Fire when live PR-AUC from delayed labels drops this much below the holdout's."""

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        if value:
            check_cron(value)
        return value


class Decision(BaseModel):
    """A recorded decision, fired or suppressed."""

    at: datetime
    kind: Kind
    fired: bool
    cohort: str = ""
    reason: str
    evidence: dict[str, Any] = Field(default_factory=dict)


class TriggerState(BaseModel):
    """What the policy remembers between evaluations."""

    consecutive: dict[str, int] = Field(default_factory=dict)
    disarmed: list[str] = Field(default_factory=list)
    last_fired: float | None = None
    schedule_checked_until: float | None = None
    """Due times up to here were considered (epoch seconds)."""
    decisions: list[Decision] = Field(default_factory=list)


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _cooling(policy: TriggerPolicy, state: TriggerState, now: float) -> bool:
    return state.last_fired is not None and now - state.last_fired < policy.cooldown_s


def _record(
    state: TriggerState,
    now: float,
    kind: Kind,
    fired: bool,
    reason: str,
    cohort: str = "",
    **evidence: Any,
) -> Decision:
    decision = Decision(
        at=_ts(now),
        kind=kind,
        fired=fired,
        cohort=cohort,
        reason=reason,
        evidence=evidence,
    )
    state.decisions.append(decision)
    if fired:
        state.last_fired = now
    return decision


def evaluate_drift(
    policy: TriggerPolicy,
    state: TriggerState,
    windows: Sequence[WindowSummary],
    now: float,
) -> list[Decision]:
    """Feed new windows (any order); returns the decisions taken.

    Windows are grouped into rounds per cohort; in each round, quality-flagged
    windows become data-quality alerts (:func:`quality_alerts`) and the clean
    rest is counted for drift (:func:`judge_drift_round`).
    """
    out: list[Decision] = []
    rounds: dict[tuple[str, int], list[WindowSummary]] = defaultdict(list)
    for w in windows:
        rounds[(w.cohort, int(w.window_end // policy.window_s))].append(w)
    for (cohort, bucket), members in sorted(
        rounds.items(), key=lambda kv: (kv[0][1], kv[0][0])
    ):
        latest = {w.node: w for w in sorted(members, key=lambda w: w.window_end)}
        out += quality_alerts(state, now, cohort, latest)
        clean = {
            n: w
            for n, w in latest.items()
            if not w.quality_flags and w.drifted_share is not None
        }
        if clean:
            out += judge_drift_round(policy, state, now, cohort, bucket, clean)
    return out


def quality_alerts(
    state: TriggerState, now: float, cohort: str, latest: dict[str, WindowSummary]
) -> list[Decision]:
    """A data-quality alert per node whose window carries quality flags.

    Sensor faults are not drift: these windows are left out of the drift count.
    """
    return [
        _record(
            state,
            now,
            "data_quality",
            False,
            f"node {node}: {', '.join(w.quality_flags)}; not counted as drift",
            cohort,
            node=node,
            report=w.key,
        )
        for node, w in sorted(latest.items())
        if w.quality_flags
    ]


def judge_drift_round(
    policy: TriggerPolicy,
    state: TriggerState,
    now: float,
    cohort: str,
    bucket: int,
    clean: dict[str, WindowSummary],
) -> list[Decision]:
    """Count one round of a cohort's clean windows; fire, suppress or wait.

    Consecutive drifted rounds arm the trigger, hysteresis (``release_fraction``)
    re-arms a fired cohort, the cooldown suppresses a storm.
    """
    drifted = sorted(
        n for n, w in clean.items() if (w.drifted_share or 0.0) >= policy.drift_share
    )
    share = len(drifted) / len(clean)
    if share < policy.node_fraction:
        state.consecutive[cohort] = 0
        if cohort in state.disarmed and share < policy.release_fraction:
            state.disarmed.remove(cohort)
        return []
    count = state.consecutive[cohort] = state.consecutive.get(cohort, 0) + 1
    if count < policy.consecutive or cohort in state.disarmed:
        return []
    evidence = {
        "window": _ts((bucket + 1) * policy.window_s).isoformat(),
        "reporting": len(clean),
        "drifted_nodes": drifted,
        "shares": {n: clean[n].drifted_share for n in sorted(clean)},
        "versions": sorted({clean[n].version for n in drifted}),
        "reports": sorted(clean[n].key for n in drifted),
        "consecutive": count,
    }
    if _cooling(policy, state, now):
        reason = f"cohort {cohort} drifted but within the cooldown"
        return [_record(state, now, "drift", False, reason, cohort, **evidence)]
    state.disarmed.append(cohort)
    reason = (
        f"cohort {cohort}: {len(drifted)} of {len(clean)} nodes drifted "
        f"for {count} windows"
    )
    return [_record(state, now, "drift", True, reason, cohort, **evidence)]


def check_cron(expression: str) -> None:
    """Raise ``ValueError`` naming the expression unless it is a 5-field cron."""
    if len(expression.split()) != 5:
        raise ValueError(
            f"cron {expression!r}: expected 5 fields (minute hour day month weekday)"
        )
    try:
        CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ValueError(f"cron {expression!r}: {exc}") from exc


def cron_matches(expression: str, when: datetime) -> bool:
    """Whether a 5-field cron expression (UTC) matches the minute of ``when``.

    Raises:
        ValueError: not a valid 5-field expression.
    """
    check_cron(expression)
    minute = when.replace(second=0, microsecond=0)
    return next(CronSim(expression, minute - timedelta(minutes=1))) == minute


_MAX_MISSED = 10_000
"""Counting missed due times stops here (a minutely schedule down for a year)."""


def due_times(expression: str, after: float, until: float) -> list[datetime]:
    """Due times of the schedule in ``(after, until]``, oldest first (at most 10,000)."""
    out: list[datetime] = []
    for due in CronSim(expression, _ts(after)):
        if due.timestamp() > until or len(out) >= _MAX_MISSED:
            break
        out.append(due)
    return out


def evaluate_schedule(
    policy: TriggerPolicy, state: TriggerState, now: float
) -> list[Decision]:
    """Fire once for the due times passed since the last evaluation.

    The first evaluation considers the current minute. After downtime several
    due times may have passed: they fire *once* (one retraining catches up on
    all of them), with how many were missed in the evidence.
    """
    if not policy.schedule:
        return []
    start = state.schedule_checked_until
    if start is None:
        start = now - now % 60 - 1  # the current minute is due
    due = due_times(policy.schedule, start, now)
    state.schedule_checked_until = now
    if not due:
        return []
    evidence: dict[str, Any] = {
        "due_at": due[-1].isoformat(),
        "missed": len(due),
    }
    reason = f"schedule {policy.schedule!r} due at {due[-1]:%Y-%m-%d %H:%M} UTC"
    if len(due) > 1:
        reason += (
            f" ({len(due)} due times passed since the last evaluation; fired once)"
        )
    if _cooling(policy, state, now):
        return [
            _record(
                state,
                now,
                "schedule",
                False,
                reason + "; within the cooldown",
                **evidence,
            )
        ]
    return [_record(state, now, "schedule", True, reason, **evidence)]


def evaluate_new_data(
    policy: TriggerPolicy, state: TriggerState, new_rows: int, now: float
) -> list[Decision]:
    """Fire when enough new labelled rows arrived since the last training."""
    if not policy.new_labelled_rows or new_rows < policy.new_labelled_rows:
        return []
    fired = not _cooling(policy, state, now)
    reason = f"{new_rows} new labelled rows (threshold {policy.new_labelled_rows})"
    return [
        _record(
            state,
            now,
            "new_data",
            fired,
            reason if fired else reason + "; within the cooldown",
            new_rows=new_rows,
        )
    ]


def evaluate_performance(
    policy: TriggerPolicy,
    state: TriggerState,
    live_pr_auc: float,
    holdout_pr_auc: float,
    version: str,
    now: float,
) -> list[Decision]:
    """Fire when the live metric from delayed labels dropped too far."""
    drop = holdout_pr_auc - live_pr_auc
    if drop <= policy.max_metric_drop:
        return []
    fired = not _cooling(policy, state, now)
    reason = f"version {version}: live PR-AUC {live_pr_auc:.3f} vs holdout {holdout_pr_auc:.3f}"
    return [
        _record(
            state,
            now,
            "performance",
            fired,
            reason if fired else reason + "; within the cooldown",
            version=version,
            live=live_pr_auc,
            holdout=holdout_pr_auc,
        )
    ]


def manual(
    state: TriggerState, reason: str, now: float, kind: Kind = "manual"
) -> Decision:
    """A person (or a CI job, ``code_change``) asked for a retraining: always fires."""
    return _record(state, now, kind, True, reason)
