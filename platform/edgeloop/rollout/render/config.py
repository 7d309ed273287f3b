"""The desired-model ConfigMap the agent mounts as a file."""

from __future__ import annotations

from typing import Any

from edgeloop_agent.contracts import DesiredModel

DESIRED_FILE = "desired-model.json"
MOUNT_DIR = "/etc/edgeloop"


def configmap_name(rollout: str, group: str) -> str:
    """One ConfigMap per group, so groups can sit on different versions mid-rollout."""
    return f"{rollout}-{group}-desired-model"[:253]


def desired_model_configmap(
    rollout: str,
    group: str,
    namespace: str,
    desired: DesiredModel,
    labels: dict[str, str],
) -> dict[str, Any]:
    """ConfigMap holding the DesiredModel record as JSON (what the agent watches)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": configmap_name(rollout, group),
            "namespace": namespace,
            "labels": dict(labels),
        },
        "data": {DESIRED_FILE: desired.model_dump_json(exclude_none=True)},
    }
