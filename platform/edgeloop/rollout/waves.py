"""Which nodes each wave takes, which groups the model cannot serve, and when a site may change.

Pure functions of the spec and the fleet: percentages resolved to nodes,
hardware-fit refusals from the model's latency profiles, label-selected group
members, and maintenance windows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from edgeloop.rollout.spec import EdgeRolloutSpec, TargetGroup, Wave
from edgeloop.rollout.views import NodeObservation, ts
from edgeloop_agent.contracts import LatencyProfile


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


def members(
    group: TargetGroup,
    fleet: Sequence[NodeObservation],
    labels: dict[str, dict[str, str]],
) -> list[str]:
    """A group's nodes: listed explicitly, or the observed ones its labels select."""
    if group.nodes:
        return sorted(group.nodes)
    found = [
        n.node
        for n in fleet
        if labels.get(n.node, {}).items() >= group.matchLabels.items()
        and group.matchLabels
    ]
    return sorted(found)


def outside_window(spec: EdgeRolloutSpec, groups: Sequence[str], now: float) -> str:
    """Why a wave may not start now (a site outside its maintenance windows), or ""."""
    hour = ts(now).hour
    sites = {g.site for g in spec.groups if g.name in groups and g.site}
    for site in sorted(sites):
        windows = [w for w in spec.maintenanceWindows if w.site == site]
        if windows and not any(w.contains(hour) for w in windows):
            spans = ", ".join(f"{w.startHour:02d}-{w.endHour:02d}" for w in windows)
            return f"site {site} is outside its maintenance window ({spans} UTC, now {hour:02d}h)"
    return ""
