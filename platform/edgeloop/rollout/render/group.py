"""Render everything one target group needs for one desired model."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from edgeloop.core.errors import PermanentError
from edgeloop.core.token_secrets import site_token_secret
from edgeloop.rollout import pod_security
from edgeloop.rollout.render import config, k3s, kubeedge, labels, workloads
from edgeloop.rollout.spec import EdgeRolloutSpec, TargetGroup
from edgeloop_agent.contracts import DesiredModel


@dataclass(frozen=True)
class GroupRender:
    """Inputs of :func:`render_group` (all already validated)."""

    rollout: str
    namespace: str
    spec: EdgeRolloutSpec
    group: TargetGroup
    desired: DesiredModel
    """The group's record (also what labels name)."""
    replicas: int
    prepull: bool = False
    overrides: dict[str, DesiredModel] = field(default_factory=dict)
    """Per-node records where a percentage wave split the group."""
    group_default: bool = True
    """False: only the nodes in ``overrides`` get a record (the rest run nothing yet)."""


def node_group_name(rollout: str, group: TargetGroup) -> str:
    """The NodeGroup a group targets: its own, or one the rollout manages."""
    return group.nodeGroup or f"{rollout}-{group.name}"


def token_secret(prefix: str, scope: str, site: str) -> str:
    """The Secret a group's agents mount: per site unless the scope is shared."""
    if not prefix or scope == "shared":
        return prefix
    return site_token_secret(prefix, site)


def render_group(r: GroupRender) -> list[dict[str, Any]]:
    """Manifests for one group, in apply order (pure, deterministic).

    Long: every object of one group is rendered here in apply order, so the order is visible in one place.
    """
    tags = labels.common(
        r.rollout, r.group.name, r.desired.model_name, r.desired.version
    )
    name = f"{r.rollout}-{r.group.name}"
    objects: list[dict[str, Any]] = [
        config.desired_model_configmap(
            r.rollout,
            r.group.name,
            r.namespace,
            r.desired if r.group_default else None,
            tags,
            r.overrides,
        )
    ]
    threads = r.spec.runtime.threads
    common = workloads.AgentWorkload(
        name=f"{name}-agent",
        namespace=r.namespace,
        rollout=r.rollout,
        group=r.group.name,
        site=r.group.site,
        image=r.spec.runtime.image,
        threads=threads,
        replicas=r.replicas,
        extra_env=r.spec.runtime.env,
        object_labels=tags,
        intake_url=r.spec.runtime.intakeUrl,
        token_secret=token_secret(
            r.spec.runtime.tokenSecret,
            r.spec.runtime.tokenScope,
            r.group.site or r.group.name,
        ),
        state_volume=r.spec.runtime.stateVolume,
    )
    if r.spec.platform == "kubeedge":
        ng = node_group_name(r.rollout, r.group)
        if r.group.nodes and not r.group.nodeGroup:
            objects.append(
                kubeedge.node_group(ng, r.group.nodes, r.group.matchLabels, tags)
            )
        if r.prepull:
            objects.append(
                kubeedge.image_prepull_job(
                    f"{name}-prepull",
                    r.spec.runtime.image,
                    {kubeedge.NODE_GROUP_LABEL: ng},
                    tags,
                )
            )
        deployment = workloads.agent_deployment(common)
        objects.append(
            kubeedge.edge_application(
                name=name,
                namespace=r.namespace,
                node_group_name=ng,
                deployment=deployment,
                replicas=r.replicas,
                threads=threads,
                labels=tags,
            )
        )
    else:
        objects.append(
            workloads.agent_deployment(
                replace(
                    common,
                    node_selector=r.group.matchLabels or None,
                    affinity_nodes=r.group.nodes or None,
                )
            )
        )
        objects.append(
            k3s.service(f"{name}-agent", r.namespace, r.rollout, r.group.name, tags)
        )
    level = r.spec.runtime.podSecurity
    for where, pod in pod_security.pod_templates(objects):
        broken = pod_security.violations(pod, level)
        if broken:  # a renderer bug: the spec's own validation should have said
            raise PermanentError(
                f"{where} breaks Pod Security level {level!r}: {'; '.join(broken)}"
            )
    return objects
