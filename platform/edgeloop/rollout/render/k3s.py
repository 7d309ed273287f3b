"""K3s: a plain Deployment per group (node selector / affinity) and its Service."""

from __future__ import annotations

from typing import Any

from edgeloop.rollout.render import labels as labels_mod
from edgeloop.rollout.render import workloads


def service(
    name: str, namespace: str, rollout: str, group: str, labels: dict[str, str]
) -> dict[str, Any]:
    """ClusterIP Service in front of a group's agents (metrics scraping, local clients)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "type": "ClusterIP",
            "selector": labels_mod.selector(rollout, group),
            "ports": [
                {
                    "name": "http",
                    "port": workloads.AGENT_PORT,
                    "targetPort": "http",
                    "protocol": "TCP",
                }
            ],
        },
    }
