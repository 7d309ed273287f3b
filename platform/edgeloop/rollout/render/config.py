"""The desired-model ConfigMap the agent mounts as a file."""

from __future__ import annotations

from typing import Any

from edgeloop_agent.contracts import DesiredModel

DESIRED_FILE = "desired-model.json"
MOUNT_DIR = "/etc/edgeloop"


def configmap_name(rollout: str, group: str) -> str:
    """One ConfigMap per group, so groups can sit on different versions mid-rollout."""
    return f"{rollout}-{group}-desired-model"[:253]


def node_key(node: str) -> str:
    """The ConfigMap key of a node's own record (a percentage wave split its group)."""
    return f"desired-model.{node}.json"


def desired_model_configmap(
    rollout: str,
    group: str,
    namespace: str,
    desired: DesiredModel | None,
    labels: dict[str, str],
    overrides: dict[str, DesiredModel] | None = None,
) -> dict[str, Any]:
    """ConfigMap holding the DesiredModel record as JSON (what the agent watches).

    ``overrides``: per-node records, under :func:`node_key`, which the agent
    prefers to the group's ``desired-model.json`` (absent when ``desired`` is
    None: those nodes run nothing yet).
    """
    data = (
        {}
        if desired is None
        else {DESIRED_FILE: desired.model_dump_json(exclude_none=True)}
    )
    for node, record in sorted((overrides or {}).items()):
        data[node_key(node)] = record.model_dump_json(exclude_none=True)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": configmap_name(rollout, group),
            "namespace": namespace,
            "labels": dict(labels),
        },
        "data": data,
    }
