"""The whole chain of one model version, from data to fleet and on to its successor.

data (partitions and their hashes) -> pipeline run (and the trigger that
started it) -> registry version -> bundle digest -> rollout waves and times
-> nodes running it -> drift reports -> the trigger that produced the next
version. Joined from the registry (lineage tags, verified bundle), the audit
log and the fleet's view (the intake's store, passed in by the caller so that
provenance stays below the monitoring stage); each part says where it came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from edgeloop.core.settings import PlatformSettings
from edgeloop.provenance.audit import AuditLog
from edgeloop.provenance.registry import ModelRef, Registry


class FleetSource(Protocol):
    """What lineage reads of the fleet: the intake's store provides it."""

    def fleet(self) -> list[dict[str, Any]]:
        """Every node's current view (``node``, ``active_version``, ...)."""
        ...

    def version_drift(self, version: str) -> dict[str, Any]:
        """A version's drift reports: counts and the ids of drifted ones."""
        ...


def chain(
    settings: PlatformSettings,
    registry: Registry,
    ref: ModelRef,
    fleet: FleetSource | None = None,
) -> dict[str, Any]:
    """Everything known about ``ref`` and what followed it.

    ``fleet`` is the intake's view; None where no intake has run (the fleet
    part is then empty).
    """
    base = registry.lineage(ref)
    subject = base["model"]
    name, version = subject.rsplit(":", 1)
    audit = AuditLog(settings.audit_path())
    dataset_uri = str(base.get("dataset_uri", ""))
    datasets = [
        r
        for r in audit.records("dataset")
        if dataset_uri and _same_path(r["subject"], dataset_uri)
    ]
    training = audit.records("training", subject)
    rollouts = [
        {
            "at": r["details"].get("decided_at", r["at"]),
            "rollout": r["details"].get("rollout", ""),
            "wave": r["details"].get("wave", ""),
            "action": r["details"].get("action", ""),
            "reason": r["details"].get("reason", ""),
        }
        for r in audit.records("rollout", subject)
    ]
    out: dict[str, Any] = {
        **base,
        "data": {
            "data_hash": base.get("data_hash", ""),
            "dataset_uri": dataset_uri,
            "partitions": datasets[-1]["details"].get("partitions", [])
            if datasets
            else [],
        },
        "training": [
            {
                "at": r["at"],
                "reason": r["details"].get("reason", ""),
                "trigger": r["details"].get("trigger"),
            }
            for r in training
        ],
        "rollouts": rollouts,
        "fleet": _fleet(fleet, version),
        "triggers": [
            {
                "at": r["at"],
                "reason": r["details"]["decision"].get("reason", ""),
                "reports": r["details"]["decision"]
                .get("evidence", {})
                .get("reports", []),
            }
            for r in audit.records("trigger", subject)
        ],
        "next_versions": _successors(registry, audit, name, subject),
    }
    return out


def _same_path(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


def _fleet(source: FleetSource | None, version: str) -> dict[str, Any]:
    """Nodes running the version now, and its drift reports."""
    if source is None:
        return {"nodes": [], "drift_reports": 0, "drifted_reports": []}
    nodes = [n["node"] for n in source.fleet() if n["active_version"] == version]
    return {"nodes": nodes, **source.version_drift(version)}


def _successors(
    registry: Registry, audit: AuditLog, name: str, subject: str
) -> list[dict[str, Any]]:
    out = []
    for row in registry.versions(name):
        candidate = f"{name}:{row['version']}"
        if row["parent_champion"] != subject:
            continue
        trained = audit.records("training", candidate)
        out.append(
            {
                "model": candidate,
                "gates": row["gates"],
                "reason": trained[-1]["details"].get("reason", "") if trained else "",
                "trigger": trained[-1]["details"].get("trigger") if trained else None,
            }
        )
    return out
