"""Ownership and version labels on everything the controller renders."""

from __future__ import annotations

MANAGED_BY = "edgeloop"
OFFLINE_AUTONOMY = {"app-offline.kubeedge.io": "autonomy"}
"""KubeEdge keeps pods with this label running through a lost cloud link."""


def label_value(value: str) -> str:
    """Label values: at most 63 characters of [-_.A-Za-z0-9], alphanumeric at the ends."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in value)[:63]
    return cleaned.strip("-_.") or "none"


def selector(rollout: str, group: str) -> dict[str, str]:
    """Labels that select one group's agent pods (stable across versions)."""
    return {
        "app.kubernetes.io/name": "edgeloop-agent",
        "app.kubernetes.io/instance": label_value(f"{rollout}-{group}"),
    }


def common(rollout: str, group: str, model: str, version: str) -> dict[str, str]:
    """Labels on every rendered object of a group."""
    return {
        **selector(rollout, group),
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "edgeloop.io/rollout": label_value(rollout),
        "edgeloop.io/group": label_value(group),
        "edgeloop.io/model": label_value(model),
        "edgeloop.io/model-version": label_value(version),
    }
