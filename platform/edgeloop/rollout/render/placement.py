"""Where agent pods may run: edge nodes, tolerating edge taints and lost links."""

from __future__ import annotations

from typing import Any

EDGE_ROLE = "node-role.kubernetes.io/edge"
"""Label KubeEdge puts on edge nodes (cloud/pkg/common/nodes/nodes.go)."""


def tolerations() -> list[dict[str, Any]]:
    """Edge taints, and no eviction while a node is unreachable (offline is normal)."""
    return [
        {"key": EDGE_ROLE, "operator": "Exists", "effect": "NoSchedule"},
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
        },
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
        },
    ]


def one_per_node(match_labels: dict[str, str]) -> dict[str, Any]:
    """Anti-affinity: at most one agent of a group per node."""
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": dict(match_labels)},
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    }


def node_affinity(nodes: list[str]) -> dict[str, Any]:
    """Pin to explicit nodes (K3s groups given by node names)."""
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": "kubernetes.io/hostname",
                                "operator": "In",
                                "values": sorted(nodes),
                            }
                        ]
                    }
                ]
            }
        }
    }
