"""Which model every group and node should run after a planning pass.

Waves up to the current one run the target, later ones the last-known-good;
after a rollback, the policy's scope decides which waves go back. A group split
by a percentage wave gets a default (what most of its nodes run) plus per-node
exceptions, rendered as per-node keys of the group's ConfigMap.
"""

from __future__ import annotations

from edgeloop.rollout.spec import EdgeRolloutSpec, EdgeRolloutStatus
from edgeloop.rollout.views import Plan, RegistryView
from edgeloop_agent.contracts import DesiredModel


def desired_for_wave(
    index: int,
    current: int,
    status: EdgeRolloutStatus,
    spec: EdgeRolloutSpec,
    registry: RegistryView,
    lkg: DesiredModel | None,
) -> DesiredModel | None:
    """What a node or group of wave ``index`` should run now."""
    if status.phase in {"RolledBack", "Failed"}:
        if spec.rollback.scope == "all-waves" or index == current:
            return lkg
        return registry.desired if index < current else lkg
    if index <= current or status.phase == "Succeeded":
        return registry.desired
    return lkg


def assign(
    result: Plan,
    spec: EdgeRolloutSpec,
    registry: RegistryView,
    lkg: DesiredModel | None,
) -> None:
    """Fill ``result.desired`` (per group) and ``result.node_desired`` (exceptions)."""
    status = result.status
    names = [w.name for w in spec.waves]
    current = names.index(status.wave) if status.wave in names else 0

    def wanted(index: int) -> DesiredModel | None:
        return desired_for_wave(index, current, status, spec, registry, lkg)

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
            result.desired[group.name] = wanted(index)
            continue
        per_node = {n: wanted(node_wave[n]) if n in node_wave else lkg for n in members}
        _split_group(result, group.name, per_node)


def _split_group(
    result: Plan, group: str, per_node: dict[str, DesiredModel | None]
) -> None:
    """A group's default record and the nodes that differ from it."""
    versions = [None if d is None else d.version for d in per_node.values()]
    # The group's default is what most of its nodes run; when some nodes
    # must run nothing yet (a first rollout split by a percentage), there is
    # no default and only the nodes with a model get a per-node record.
    common = (
        None if None in versions else max(dict.fromkeys(versions), key=versions.count)
    )
    default = next(
        (d for d in per_node.values() if d is not None and d.version == common),
        None,
    )
    result.desired[group] = default
    for node, model in per_node.items():
        if model is not None and model.version != common:
            result.node_desired[node] = model
