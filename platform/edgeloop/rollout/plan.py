"""Rollout planning: spec + registry view + fleet observations + clock -> plan.

Pure and deterministic: no I/O, no clock of its own, no randomness. The
controller (or ``edgeloop rollout plan``) calls :func:`plan` on every
reconcile; the returned status is written back, and the per-group desired
models are rendered and applied.

Rules, in order:

* a new target version starts at the first wave; the previous successful
  version becomes ``lastKnownGood``;
* groups whose device profile the model's recorded latency/memory profile does
  not fit are refused (condition ``HardwareFit=False``) and keep their model;
* waves run in order; earlier waves run the target, later ones the last good;
* a wave's gates are read from the nodes that report: silent nodes count
  neither way up to ``maxSilentFraction`` (beyond it the wave holds); the wave
  passes when enough reporting nodes run the target healthily for the soak time;
* a failed gate rolls back (automatically, if the policy says so) and records why;
* ``paused`` holds everything; manual ``promote`` skips the soak/approval.

The steps live beside it: :mod:`~edgeloop.rollout.waves` (who is in which
wave, hardware fit, maintenance windows), :mod:`~edgeloop.rollout.gates` (a
wave's verdict), :mod:`~edgeloop.rollout.assignment` (who runs what).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edgeloop.rollout import assignment, gates, waves
from edgeloop.rollout.spec import (
    Condition,
    Decision,
    EdgeRollout,
    EdgeRolloutSpec,
    EdgeRolloutStatus,
    WaveStatus,
)
from edgeloop.rollout.views import GateCheck, NodeObservation, Plan, RegistryView, ts
from edgeloop.rollout.waves import hardware_refusals, outside_window, resolve_waves
from edgeloop_agent.contracts import DesiredModel

__all__ = [
    "GateCheck",
    "NodeObservation",
    "Plan",
    "RegistryView",
    "hardware_refusals",
    "outside_window",
    "plan",
    "resolve_waves",
]


@dataclass
class _Decisions:
    """Appends decisions to the status history, all stamped ``now``."""

    status: EdgeRolloutStatus
    now: float

    def __call__(self, action: str, wave: str, reason: str) -> None:
        self.status.history.append(
            Decision.model_validate(
                {"at": ts(self.now), "wave": wave, "action": action, "reason": reason}
            )
        )

    def hold_once(self, wave: str, reason: str) -> None:
        """Record a hold unless the last decision already holds this wave."""
        last = self.status.history[-1] if self.status.history else None
        if last is None or last.action != "hold" or last.wave != wave:
            self("hold", wave, reason)


def plan(
    rollout: EdgeRollout,
    registry: RegistryView,
    fleet: Sequence[NodeObservation],
    now: float,
    *,
    node_labels: dict[str, dict[str, str]] | None = None,
    silent_after_s: float = 300.0,
    promote: bool = False,
) -> Plan:
    """One reconcile step (see the module docstring for the rules)."""
    spec = rollout.spec
    status = rollout.status.model_copy(deep=True)
    labels = node_labels or {}
    result = Plan(status=status)
    result.nodes = {g.name: waves.members(g, fleet, labels) for g in spec.groups}
    result.waves, result.wave_nodes = resolve_waves(
        spec.waves, spec.groups, result.nodes
    )
    result.refused = hardware_refusals(spec.groups, registry.latency)
    decide = _Decisions(status, now)

    _start_new_target(status, spec, registry, now, decide)
    status.conditions = [_hardware_condition(result.refused)]
    _pause_or_resume(status, spec, decide)
    lkg = _lkg(status, registry)
    if status.phase == "Progressing":
        _step_wave(
            result,
            spec,
            registry,
            {o.node: o for o in fleet},
            now,
            silent_after_s=silent_after_s,
            promote=promote,
            lkg=lkg,
            decide=decide,
        )
    assignment.assign(result, spec, registry, lkg)
    return result


def _start_new_target(
    status: EdgeRolloutStatus,
    spec: EdgeRolloutSpec,
    registry: RegistryView,
    now: float,
    decide: _Decisions,
) -> None:
    """A new target version restarts at the first wave; the old one may become LKG."""
    target = registry.desired.version
    if status.modelVersion == target:
        return
    if status.modelVersion and status.phase in {"Succeeded", "Progressing", "Paused"}:
        status.lastKnownGood = (
            status.modelVersion if status.phase == "Succeeded" else status.lastKnownGood
        )
    status.modelVersion, status.phase, status.wave = (
        target,
        "Progressing",
        spec.waves[0].name,
    )
    status.waves = [WaveStatus(name=w.name) for w in spec.waves]
    status.waves[0].startedAt = ts(now)
    decide(
        "start",
        spec.waves[0].name,
        f"new target {registry.desired.model_name}:{target}",
    )


def _hardware_condition(refused: dict[str, str]) -> Condition:
    return Condition(
        type="HardwareFit",
        status="False" if refused else "True",
        reason="ProfileMismatch" if refused else "AllGroupsFit",
        message="; ".join(f"{g}: {r}" for g, r in sorted(refused.items())),
    )


def _pause_or_resume(
    status: EdgeRolloutStatus, spec: EdgeRolloutSpec, decide: _Decisions
) -> None:
    if status.phase == "Progressing" and spec.paused:
        status.phase = "Paused"
        decide("pause", status.wave, "spec.paused is true")
    elif status.phase == "Paused" and not spec.paused:
        status.phase = "Progressing"
        decide("resume", status.wave, "spec.paused is false")


def _step_wave(
    result: Plan,
    spec: EdgeRolloutSpec,
    registry: RegistryView,
    observed: dict[str, NodeObservation],
    now: float,
    *,
    silent_after_s: float,
    promote: bool,
    lkg: DesiredModel | None,
    decide: _Decisions,
) -> None:
    """The wave state machine: judge the current wave, then fail, advance or hold."""
    status = result.status
    names = [w.name for w in spec.waves]
    current = names.index(status.wave) if status.wave in names else 0
    wave = spec.waves[current]
    refused_nodes = {n for g in result.refused for n in result.nodes[g]}
    nodes = [n for n in result.wave_nodes[wave.name] if n not in refused_nodes]
    started = (status.waves[current].startedAt or ts(now)).timestamp()
    if promote:
        started = now - wave.gates.soakSeconds  # promote skips the soak (and approval)
    verdict, counts, checks = gates.evaluate_wave(
        wave,
        nodes,
        registry.desired.version,
        observed,
        now,
        started,
        silent_after_s,
        registry.previous_drifted_share,
    )
    status.waves[current] = counts
    result.gates = checks
    if verdict == "fail":
        reason = next(c.detail for c in checks if not c.passed)
        if spec.rollback.automatic and lkg is not None:
            status.phase = "RolledBack"
            decide(
                "rollback", wave.name, f"gate failed: {reason}; back to {lkg.version}"
            )
        else:
            status.phase = "Failed"
            decide("hold", wave.name, f"gate failed: {reason}; no automatic rollback")
    elif verdict == "pass":
        _after_pass(result, spec, current, now, promote, decide)
    else:
        reason = next((c.detail for c in checks if not c.passed), "waiting")
        decide.hold_once(wave.name, reason)


def _after_pass(
    result: Plan,
    spec: EdgeRolloutSpec,
    current: int,
    now: float,
    promote: bool,
    decide: _Decisions,
) -> None:
    """A passed wave completes the rollout, waits for approval or a window, or advances."""
    status = result.status
    names = [w.name for w in spec.waves]
    wave = names[current]
    if current + 1 == len(spec.waves):
        status.phase = "Succeeded"
        decide("complete", wave, "every wave passed its gates")
        return
    following = names[current + 1]
    if spec.waves[current + 1].requireApproval and not promote:
        status.conditions.append(
            Condition(
                type="AwaitingApproval",
                status="True",
                reason="ManualGate",
                message=f"wave {following} needs `edgeloop rollout promote`",
            )
        )
        return
    closed = outside_window(spec, result.waves[following], now)
    if closed and not promote:
        last = status.history[-1]
        if last.action != "hold" or last.reason != closed:
            decide("hold", wave, closed)
        return
    status.wave = following
    status.waves[current + 1].startedAt = ts(now)
    decide("advance", wave, f"gates passed; starting wave {status.wave}")


def _lkg(status: EdgeRolloutStatus, registry: RegistryView) -> DesiredModel | None:
    """The last-known-good record, as the registry view knows it."""
    last = status.lastKnownGood
    fallback = registry.desired.last_known_good
    if fallback is not None and (not last or fallback.version == last):
        return fallback
    return None
