"""KubeEdge: NodeGroup (when the rollout owns membership) and EdgeApplication.

EdgeApplication creates one Deployment per target NodeGroup and overwrites the
template's nodeSelector with the group's, so targeting goes through the
NodeGroup, never the pod. Per-group settings travel as overriders.
"""

from __future__ import annotations

from typing import Any

from edgeloop.rollout.render import workloads

NODE_GROUP_LABEL = "apps.kubeedge.io/belonging-to"


def node_group(
    name: str, nodes: list[str], match_labels: dict[str, str], labels: dict[str, str]
) -> dict[str, Any]:
    """A cluster-scoped NodeGroup listing its members."""
    spec: dict[str, Any] = {}
    if nodes:
        spec["nodes"] = sorted(nodes)
    if match_labels:
        spec["matchLabels"] = dict(match_labels)
    return {
        "apiVersion": "apps.kubeedge.io/v1alpha1",
        "kind": "NodeGroup",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": spec,
    }


def edge_application(
    *,
    name: str,
    namespace: str,
    node_group_name: str,
    deployment: dict[str, Any],
    replicas: int,
    threads: int,
    labels: dict[str, str],
) -> dict[str, Any]:
    """An EdgeApplication deploying the agent template to one NodeGroup."""
    return {
        "apiVersion": "apps.kubeedge.io/v1alpha1",
        "kind": "EdgeApplication",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "workloadTemplate": {"manifests": [deployment]},
            "workloadScope": {
                "targetNodeGroups": [
                    {
                        "name": node_group_name,
                        "overriders": {
                            "replicas": replicas,
                            "resourcesOverriders": [
                                {
                                    "containerName": "agent",
                                    "value": workloads.resources(threads),
                                }
                            ],
                        },
                    }
                ]
            },
        },
    }


def image_prepull_job(
    name: str, image: str, node_group_labels: dict[str, str], labels: dict[str, str]
) -> dict[str, Any]:
    """Pre-stage the runtime image on a group's nodes before the wave starts."""
    return {
        "apiVersion": "operations.kubeedge.io/v1alpha2",
        "kind": "ImagePrePullJob",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "imagePrePullTemplate": {
                "images": [image],
                "labelSelector": {"matchLabels": dict(node_group_labels)},
                "retryTimes": 3,
                "timeoutSeconds": 600,
            }
        },
    }
