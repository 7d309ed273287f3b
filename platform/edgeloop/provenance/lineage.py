"""The whole chain of one model version, from data to fleet and on to its successor.

data (partitions and their hashes) -> pipeline run (and the trigger that
started it) -> registry version -> bundle digest -> rollout waves and times
-> nodes running it -> drift reports -> the trigger that produced the next
version. Joined from the registry (lineage tags, verified bundle), the audit
log and the fleet's view (the intake's store, passed in by the caller so that
provenance stays below the monitoring stage); each part says where it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from edgeloop.core.settings import PlatformSettings
from edgeloop.provenance.audit import AuditLog
from edgeloop.provenance.registry import ModelRef, Registry


class FleetSource(Protocol):
    """What lineage reads of the fleet: the intake's store provides it."""

    def fleet(self) -> Sequence[NodeState]:
        """Every node's current view."""
        ...

    def version_drift(self, version: str) -> DriftCounts:
        """A version's drift reports: counts and the keys of drifted ones."""
        ...


class NodeState(Protocol):
    """The part of a node's view lineage reads."""

    @property
    def node(self) -> str:
        """The node's name."""
        ...

    @property
    def active_version(self) -> str:
        """The version it serves."""
        ...


class DriftCounts(Protocol):
    """The part of a version's drift lineage reads."""

    def model_dump(self) -> dict[str, Any]:
        """Counts and report keys as plain data."""
        ...


class DataPart(BaseModel):
    """What the version was trained on: the data hash and the collected partitions."""

    data_hash: str = ""
    dataset_uri: str = ""
    partitions: list[dict[str, Any]] = []
    """As the ``dataset`` audit record lists them (site, day, sha256, files)."""


class TrainingPart(BaseModel):
    """One pipeline run that produced the version, and why it ran."""

    at: str
    reason: str = ""
    trigger: dict[str, Any] | None = None
    """The fired trigger decision, with its evidence (report keys)."""


class RolloutPart(BaseModel):
    """One rollout decision about the version (wave started, held, completed...)."""

    at: str
    rollout: str = ""
    wave: str = ""
    action: str = ""
    reason: str = ""


class TriggerPart(BaseModel):
    """A trigger that fired while the version served: the next version's cause."""

    at: str
    reason: str = ""
    reports: list[str] = []


class SuccessorPart(BaseModel):
    """A version trained with this one as its parent champion."""

    model: str
    gates: str = ""
    reason: str = ""
    trigger: dict[str, Any] | None = None


class LineageChain(BaseModel):
    """Everything known about one version, from data to fleet to its successor.

    The registry's lineage (``model``, ``aliases``, digests, the manifest's
    lineage fields, metrics, gates) plus the parts joined from the audit log
    and the fleet. Extra registry fields are kept (``extra="allow"``): the
    manifest's lineage may grow without this type changing.
    """

    model_config = ConfigDict(extra="allow")

    model: str
    aliases: list[str] = []
    bundle_sha256: str = ""
    model_sha256: str = ""
    metrics: dict[str, Any] = {}
    gates: list[dict[str, Any]] = []
    data: DataPart
    training: list[TrainingPart]
    rollouts: list[RolloutPart]
    fleet: dict[str, Any]
    """Nodes serving the version now and its drift reports (counts and keys)."""
    triggers: list[TriggerPart]
    next_versions: list[SuccessorPart]


def chain(
    settings: PlatformSettings,
    registry: Registry,
    ref: ModelRef,
    fleet: FleetSource | None = None,
) -> LineageChain:
    """Everything known about ``ref`` and what followed it.

    ``fleet`` is the intake's view; None where no intake has run (the fleet
    part is then empty).

    Long: most lines are the chain's shape, each part read from the audit log where it is built.
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
    return LineageChain.model_validate(
        {
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
    )


def _same_path(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


def _fleet(source: FleetSource | None, version: str) -> dict[str, Any]:
    """Nodes running the version now, and its drift reports."""
    if source is None:
        return {"nodes": [], "drift_reports": 0, "drifted_reports": []}
    nodes = [n.node for n in source.fleet() if n.active_version == version]
    return {"nodes": nodes, **source.version_drift(version).model_dump()}


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
