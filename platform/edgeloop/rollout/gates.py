"""One wave's verdict: pass, hold or fail, with every gate's detail.

Silent nodes count neither way up to ``maxSilentFraction``; errors and drift
fail a wave, too many silent or too few healthy nodes (or a short soak) hold it.
"""

from __future__ import annotations

from collections.abc import Mapping

from edgeloop.rollout.spec import Gates, Wave, WaveStatus
from edgeloop.rollout.views import GateCheck, NodeObservation, ts


def _sort_nodes(
    nodes: list[str],
    target: str,
    fleet: dict[str, NodeObservation],
    now: float,
    silent_after_s: float,
    gates: Gates,
) -> tuple[
    list[str], list[NodeObservation], list[NodeObservation], list[NodeObservation]
]:
    """(silent names, reporting, reporting on the target, those failing a limit)."""
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
    return silent, reporting, updated, bad


def _drift_pairs(
    updated: list[NodeObservation], previous: float | Mapping[str, float] | None
) -> tuple[list[float], float | None]:
    """The wave's drifted shares on the new version and the baseline to compare with.

    With per-node shares on the previous version (the intake's ``/v1/drift``),
    only nodes known on both versions count, so a site that always drifts more
    cannot pass or fail the gate by itself.
    """
    if not isinstance(previous, Mapping):
        return [o.drifted_share for o in updated if o.drifted_share is not None], (
            previous
        )
    both = [
        (o.drifted_share, previous[o.node])
        for o in updated
        if o.drifted_share is not None and o.node in previous
    ]
    if not both:
        return [], None
    return [now for now, _ in both], sum(before for _, before in both) / len(both)


def evaluate_wave(
    wave: Wave,
    nodes: list[str],
    target: str,
    fleet: dict[str, NodeObservation],
    now: float,
    started: float,
    silent_after_s: float,
    baseline_drift: float | Mapping[str, float] | None,
) -> tuple[str, WaveStatus, list[GateCheck]]:
    """Verdict ``pass`` / ``hold`` / ``fail`` for one wave, with counts and gate details.

    Long: the gates are checked in a fixed order, each with its own early verdict and detail line; one after the other reads as the rule table in docs/rollout.md.
    """
    gates: Gates = wave.gates
    silent, reporting, updated, bad = _sort_nodes(
        nodes, target, fleet, now, silent_after_s, gates
    )
    good = len(updated) - len(bad)
    status = WaveStatus(
        name=wave.name,
        targeted=len(nodes),
        updated=len(updated),
        healthy=good,
        failing=len(bad),
        silent=len(silent),
        startedAt=ts(started),
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
    drifts, baseline_drift = _drift_pairs(updated, baseline_drift)
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
