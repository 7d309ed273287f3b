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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from edgeloop.rollout.spec import (
    Condition,
    Decision,
    EdgeRollout,
    EdgeRolloutSpec,
    EdgeRolloutStatus,
    Gates,
    TargetGroup,
    Wave,
    WaveStatus,
)
from edgeloop_agent.contracts import DesiredModel, LatencyProfile


@dataclass(frozen=True)
class NodeObservation:
    """What the fleet last said about one node (from the intake's fleet API)."""

    node: str
    last_seen: float | None
    """Epoch seconds of the last heartbeat; None if never seen."""
    active_version: str = ""
    healthy: bool = True
    error_rate: float = 0.0
    p99_ms: float | None = None
    drifted_share: float | None = None


@dataclass(frozen=True)
class RegistryView:
    """What the registry says about the model the rollout follows."""

    desired: DesiredModel
    latency: Sequence[LatencyProfile] = ()
    previous_drifted_share: float | None = None
    """Mean drifted share seen on the previous version (the drift gate's baseline)."""


@dataclass(frozen=True)
class GateCheck:
    """One gate's verdict for the current wave."""

    wave: str
    name: str
    passed: bool
    detail: str


@dataclass
class Plan:
    """The outcome of one planning pass."""

    status: EdgeRolloutStatus
    desired: dict[str, DesiredModel | None] = field(default_factory=dict)
    """Desired model per group (None: render nothing new for it)."""
    nodes: dict[str, list[str]] = field(default_factory=dict)
    """Member nodes per group (explicit or observed)."""
    waves: dict[str, list[str]] = field(default_factory=dict)
    """Groups per wave (a group split by a percentage wave is in several)."""
    wave_nodes: dict[str, list[str]] = field(default_factory=dict)
    """Nodes per wave, after resolving percentages."""
    node_desired: dict[str, DesiredModel | None] = field(default_factory=dict)
    """Per-node exceptions to their group's desired model (a percentage wave
    that splits a group); rendered as per-node keys of the group's ConfigMap."""
    gates: list[GateCheck] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def resolve_waves(
    waves: Sequence[Wave], groups: Sequence[TargetGroup], nodes: dict[str, list[str]]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(groups per wave, nodes per wave).

    A group wave takes every node of its groups. A percentage wave takes that
    share (rounded up, at least one) of the nodes not yet targeted, in spec
    group order and then node name order, so consecutive percentage waves walk
    through the fleet deterministically; it may split a group (its nodes get
    per-node desired-model keys in the group's ConfigMap). Groups with no
    known nodes that no wave names join the last wave.
    """
    named = {g for w in waves for g in w.groups}
    pool = [(g.name, n) for g in groups if g.name not in named for n in nodes[g.name]]
    empty = [g.name for g in groups if g.name not in named and not nodes[g.name]]
    group_waves: dict[str, list[str]] = {}
    node_waves: dict[str, list[str]] = {}
    for wave in waves:
        if wave.groups:
            group_waves[wave.name] = list(wave.groups)
            node_waves[wave.name] = [n for g in wave.groups for n in nodes[g]]
            continue
        want = max(1, math.ceil(len(pool) * (wave.percent or 0) / 100)) if pool else 0
        chosen, pool = pool[:want], pool[want:]
        group_waves[wave.name] = list(dict.fromkeys(g for g, _ in chosen))
        node_waves[wave.name] = [n for _, n in chosen]
    if waves and empty:
        group_waves[waves[-1].name] = group_waves[waves[-1].name] + empty
    return group_waves, node_waves


def hardware_refusals(
    groups: Sequence[TargetGroup], latency: Sequence[LatencyProfile]
) -> dict[str, str]:
    """Groups whose device profile the model does not fit, with the reason."""
    profiles = {p.device_profile: p for p in latency}
    refused = {}
    for group in groups:
        profile = profiles.get(group.deviceProfile)
        if profile is None:
            refused[group.name] = (
                f"no latency profile recorded for device profile '{group.deviceProfile}'"
            )
        elif not profile.fits:
            refused[group.name] = (
                f"model does not fit '{group.deviceProfile}': p99 {profile.single_p99_ms:.2f} ms "
                f"(budget {profile.latency_budget_ms} ms), memory {profile.session_memory_mb:.0f} MB "
                f"(budget {profile.memory_budget_mb:.0f} MB)"
            )
    return refused


def _members(
    group: TargetGroup,
    fleet: Sequence[NodeObservation],
    labels: dict[str, dict[str, str]],
) -> list[str]:
    if group.nodes:
        return sorted(group.nodes)
    found = [
        n.node
        for n in fleet
        if labels.get(n.node, {}).items() >= group.matchLabels.items()
        and group.matchLabels
    ]
    return sorted(found)


def evaluate_wave(
    wave: Wave,
    nodes: list[str],
    target: str,
    fleet: dict[str, NodeObservation],
    now: float,
    started: float,
    silent_after_s: float,
    baseline_drift: float | None,
) -> tuple[str, WaveStatus, list[GateCheck]]:
    """Verdict ``pass`` / ``hold`` / ``fail`` for one wave, with counts and gate details."""
    gates: Gates = wave.gates
    silent = [
        n
        for n in nodes
        if fleet.get(n) is None
        or fleet[n].last_seen is None
        or now - (fleet[n].last_seen or 0) > silent_after_s
    ]
    reporting = [fleet[n] for n in nodes if n not in silent]
    updated = [o for o in reporting if o.active_version == target]
    bad = [
        o
        for o in updated
        if not o.healthy
        or o.error_rate > gates.maxErrorRate
        or (o.p99_ms is not None and o.p99_ms > gates.maxP99LatencyMs)
    ]
    good = len(updated) - len(bad)
    status = WaveStatus(
        name=wave.name,
        targeted=len(nodes),
        updated=len(updated),
        healthy=good,
        failing=len(bad),
        silent=len(silent),
        startedAt=_ts(started),
    )
    checks: list[GateCheck] = []

    def check(name: str, ok: bool, detail: str) -> bool:
        checks.append(GateCheck(wave.name, name, ok, detail))
        return ok

    failing_share = len(bad) / len(reporting) if reporting else 0.0
    if not check(
        "errors",
        failing_share <= 1 - gates.minHealthyFraction,
        f"{len(bad)} of {len(reporting)} reporting nodes unhealthy, over error rate "
        f"{gates.maxErrorRate} or p99 {gates.maxP99LatencyMs} ms",
    ):
        return "fail", status, checks
    drifts = [o.drifted_share for o in updated if o.drifted_share is not None]
    if drifts and baseline_drift is not None:
        mean = sum(drifts) / len(drifts)
        if not check(
            "drift",
            mean - baseline_drift <= gates.maxDriftShareIncrease,
            f"drifted share {mean:.2f} vs previous {baseline_drift:.2f} "
            f"(max increase {gates.maxDriftShareIncrease})",
        ):
            return "fail", status, checks
    silent_share = len(silent) / len(nodes) if nodes else 0.0
    if not check(
        "silent",
        silent_share <= gates.maxSilentFraction,
        f"{len(silent)} of {len(nodes)} nodes silent (max share {gates.maxSilentFraction})",
    ):
        return "hold", status, checks
    healthy_share = good / len(reporting) if reporting else 0.0
    if not check(
        "healthy",
        bool(reporting) and healthy_share >= gates.minHealthyFraction,
        f"{good} of {len(reporting)} reporting nodes healthy on {target} "
        f"(min share {gates.minHealthyFraction})",
    ):
        return "hold", status, checks
    # startedAt round-trips through a datetime (microseconds): never negative.
    soaked = max(0.0, round(now - started, 3))
    if not check(
        "soak",
        soaked >= gates.soakSeconds,
        f"soaked {soaked:.0f} s of {gates.soakSeconds} s",
    ):
        return "hold", status, checks
    return "pass", status, checks


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
    target = registry.desired.version
    observed = {o.node: o for o in fleet}
    labels = node_labels or {}
    result = Plan(status=status)
    result.nodes = {g.name: _members(g, fleet, labels) for g in spec.groups}
    result.waves, result.wave_nodes = resolve_waves(
        spec.waves, spec.groups, result.nodes
    )
    result.refused = hardware_refusals(spec.groups, registry.latency)

    def decide(action: str, wave: str, reason: str) -> None:
        status.history.append(
            Decision.model_validate(
                {"at": _ts(now), "wave": wave, "action": action, "reason": reason}
            )
        )

    if status.modelVersion != target:
        if status.modelVersion and status.phase in {
            "Succeeded",
            "Progressing",
            "Paused",
        }:
            status.lastKnownGood = (
                status.modelVersion
                if status.phase == "Succeeded"
                else status.lastKnownGood
            )
        status.modelVersion, status.phase, status.wave = (
            target,
            "Progressing",
            spec.waves[0].name,
        )
        status.waves = [WaveStatus(name=w.name) for w in spec.waves]
        status.waves[0].startedAt = _ts(now)
        decide(
            "start",
            spec.waves[0].name,
            f"new target {registry.desired.model_name}:{target}",
        )

    status.conditions = [
        Condition(
            type="HardwareFit",
            status="False" if result.refused else "True",
            reason="ProfileMismatch" if result.refused else "AllGroupsFit",
            message="; ".join(f"{g}: {r}" for g, r in sorted(result.refused.items())),
        ),
    ]
    names = [w.name for w in spec.waves]
    current = names.index(status.wave) if status.wave in names else 0
    lkg = _lkg(status, registry)

    if status.phase == "Progressing" and spec.paused:
        status.phase = "Paused"
        decide("pause", status.wave, "spec.paused is true")
    elif status.phase == "Paused" and not spec.paused:
        status.phase = "Progressing"
        decide("resume", status.wave, "spec.paused is false")

    if status.phase == "Progressing":
        wave = spec.waves[current]
        refused_nodes = {n for g in result.refused for n in result.nodes[g]}
        nodes = [n for n in result.wave_nodes[wave.name] if n not in refused_nodes]
        started = (status.waves[current].startedAt or _ts(now)).timestamp()
        if promote:
            started = (
                now - wave.gates.soakSeconds
            )  # promote skips the soak (and the approval)
        verdict, counts, checks = evaluate_wave(
            wave,
            nodes,
            target,
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
                    "rollback",
                    wave.name,
                    f"gate failed: {reason}; back to {lkg.version}",
                )
            else:
                status.phase = "Failed"
                decide(
                    "hold", wave.name, f"gate failed: {reason}; no automatic rollback"
                )
        elif verdict == "pass":
            if current + 1 == len(spec.waves):
                status.phase = "Succeeded"
                decide("complete", wave.name, "every wave passed its gates")
            elif spec.waves[current + 1].requireApproval and not promote:
                status.conditions.append(
                    Condition(
                        type="AwaitingApproval",
                        status="True",
                        reason="ManualGate",
                        message=f"wave {names[current + 1]} needs `edgeloop rollout promote`",
                    )
                )
            elif (
                closed := outside_window(spec, result.waves[names[current + 1]], now)
            ) and not promote:
                if (
                    status.history[-1].action != "hold"
                    or status.history[-1].reason != closed
                ):
                    decide("hold", wave.name, closed)
            else:
                status.wave = names[current + 1]
                status.waves[current + 1].startedAt = _ts(now)
                decide(
                    "advance", wave.name, f"gates passed; starting wave {status.wave}"
                )
        elif (
            not status.history
            or status.history[-1].action != "hold"
            or status.history[-1].wave != wave.name
        ):
            reason = next((c.detail for c in checks if not c.passed), "waiting")
            decide("hold", wave.name, reason)

    current = names.index(status.wave) if status.wave in names else 0

    def desired_for(index: int) -> DesiredModel | None:
        """What a node or group of wave ``index`` should run now."""
        if status.phase in {"RolledBack", "Failed"}:
            return (
                lkg
                if spec.rollback.scope == "all-waves" or index == current
                else (registry.desired if index < current else lkg)
            )
        if index <= current or status.phase == "Succeeded":
            return registry.desired
        return lkg

    node_wave = {
        n: i for i, w in enumerate(spec.waves) for n in result.wave_nodes[w.name]
    }
    for group in spec.groups:
        if group.name in result.refused:
            result.desired[group.name] = lkg
            continue
        members = result.nodes[group.name]
        if not members:
            index = next(
                i
                for i, w in enumerate(spec.waves)
                if group.name in result.waves[w.name]
            )
            result.desired[group.name] = desired_for(index)
            continue
        per_node = {
            n: desired_for(node_wave[n]) if n in node_wave else lkg for n in members
        }
        versions = [None if d is None else d.version for d in per_node.values()]
        # The group's default is what most of its nodes run; when some nodes
        # must run nothing yet (a first rollout split by a percentage), there is
        # no default and only the nodes with a model get a per-node record.
        common = (
            None
            if None in versions
            else max(dict.fromkeys(versions), key=versions.count)
        )
        default = next(
            (d for d in per_node.values() if d is not None and d.version == common),
            None,
        )
        result.desired[group.name] = default
        for node, wanted in per_node.items():
            if wanted is not None and wanted.version != common:
                result.node_desired[node] = wanted
    return result


def outside_window(spec: EdgeRolloutSpec, groups: Sequence[str], now: float) -> str:
    """Why a wave may not start now (a site outside its maintenance windows), or ""."""
    hour = _ts(now).hour
    sites = {g.site for g in spec.groups if g.name in groups and g.site}
    for site in sorted(sites):
        windows = [w for w in spec.maintenanceWindows if w.site == site]
        if windows and not any(w.contains(hour) for w in windows):
            spans = ", ".join(f"{w.startHour:02d}-{w.endHour:02d}" for w in windows)
            return f"site {site} is outside its maintenance window ({spans} UTC, now {hour:02d}h)"
    return ""


def _lkg(status: EdgeRolloutStatus, registry: RegistryView) -> DesiredModel | None:
    """The last-known-good record, as the registry view knows it."""
    last = status.lastKnownGood
    fallback = registry.desired.last_known_good
    if fallback is not None and (not last or fallback.version == last):
        return fallback
    return None
