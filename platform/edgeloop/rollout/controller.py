"""One reconcile: plan -> render -> validate -> sink, and where status is kept.

The kopf operator (:mod:`edgeloop.rollout.operator`) and ``edgeloop controller
run`` (:mod:`edgeloop.rollout.runner`) both call :meth:`Reconciler.reconcile`. Without a cluster, status lives in JSON files
under ``$EDGELOOP_HOME/rollouts/`` (:class:`StatusStore`).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgeloop.core.errors import PermanentError, UsageError
from edgeloop.core.paths import inside
from edgeloop.core.yaml_files import invalid, read_yaml
from edgeloop.provenance.audit import AuditLog
from edgeloop.rollout import plan as planning
from edgeloop.rollout import validate
from edgeloop.rollout.fleet import FleetSource
from edgeloop.rollout.render.group import GroupRender, render_group
from edgeloop.rollout.sinks import Sink, commit_message
from edgeloop.rollout.spec import Decision, EdgeRollout, EdgeRolloutStatus


def load_rollout(path: Path) -> EdgeRollout:
    """Read and validate an EdgeRollout YAML file (one readable error if invalid)."""
    raw = read_yaml(path, "the EdgeRollout")
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: expected an EdgeRollout object")
    try:
        return EdgeRollout.model_validate(raw)
    except ValidationError as exc:
        raise invalid(path, exc) from exc


def identity(rollout: EdgeRollout) -> str:
    """Which rollout a status belongs to: its UID, else its model under its name.

    Keyed by namespace/name alone, an unrelated rollout reusing a name (another
    model, or the object deleted and created again in the cluster) would read
    and continue the other's history.
    """
    uid = str((rollout.metadata.model_extra or {}).get("uid") or "")
    if re.fullmatch(r"[0-9a-f][0-9a-f\-]{7,63}", uid):
        return uid
    basis = f"{rollout.metadata.namespace}/{rollout.metadata.name}/{rollout.spec.model.name}"
    return "m-" + hashlib.sha256(basis.encode()).hexdigest()[:12]


@dataclass
class StatusStore:
    """Rollout status (and manual flags) in ``<dir>/<namespace>__<name>__<identity>.json``.

    With an audit log, every new history decision is also appended there (the
    status file keeps the current view; the audit log keeps everything).
    """

    directory: Path
    audit: AuditLog | None = None

    def _path(self, rollout: EdgeRollout) -> Path:
        return inside(
            self.directory,
            f"{rollout.metadata.namespace}__{rollout.metadata.name}__{identity(rollout)}.json",
        )

    def load(self, rollout: EdgeRollout) -> EdgeRollout:
        """The rollout with its stored status attached."""
        path = self._path(rollout)
        if not path.exists():
            return rollout
        status = EdgeRolloutStatus.model_validate_json(path.read_text(encoding="utf-8"))
        return rollout.model_copy(update={"status": status})

    def save(self, rollout: EdgeRollout) -> None:
        """Store the status atomically (and audit the decisions not seen before)."""
        previous = self.load(rollout).status.history if self.audit else []
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(rollout)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(rollout.status.model_dump_json(indent=1), encoding="utf-8")
        tmp.replace(path)
        if self.audit is None:
            return
        last = previous[-1].at if previous else None
        subject = f"{rollout.spec.model.name}:{rollout.status.modelVersion}"
        for decision in rollout.status.history:
            if last is None or decision.at > last:
                self.audit.append(
                    "rollout",
                    subject,
                    rollout=f"{rollout.metadata.namespace}/{rollout.metadata.name}",
                    wave=decision.wave,
                    action=decision.action,
                    reason=decision.reason,
                    decided_at=decision.at.isoformat(),
                )


def manual(
    rollout: EdgeRollout, action: str, now: float, reason: str = ""
) -> EdgeRollout:
    """Apply ``pause`` / ``resume`` / ``promote`` / ``rollback`` by hand."""
    status = rollout.status.model_copy(deep=True)
    spec = rollout.spec
    why = reason or "by hand"
    if action == "pause":
        spec = spec.model_copy(update={"paused": True})
        status.phase = "Paused" if status.phase == "Progressing" else status.phase
    elif action == "resume":
        spec = spec.model_copy(update={"paused": False})
        status.phase = "Progressing" if status.phase == "Paused" else status.phase
    elif action == "promote":
        if status.phase != "Progressing":
            raise UsageError(f"cannot promote: rollout is {status.phase}")
    elif action == "rollback":
        if not status.lastKnownGood:
            raise UsageError("cannot roll back: no last-known-good version recorded")
        status.phase = "RolledBack"
    else:
        raise UsageError(f"unknown action {action!r}")
    status.history.append(
        Decision(
            at=datetime.fromtimestamp(now, tz=UTC),
            wave=status.wave,
            action=action,
            reason=why,
        )
    )
    return rollout.model_copy(update={"spec": spec, "status": status})


FETCHABLE_SCHEMES = ("http://", "https://", "oci://")
"""Bundle URIs an edge node can fetch by itself (the agent's HTTP and OCI pulls)."""


def require_fetchable(uri: str, version: str, rollout: str) -> None:
    """Refuse a bundle URI no edge node could reach before it is shipped to a cluster.

    A local path (the embedded MLflow store) only exists on the machine that
    trained the model; written into a cluster's ConfigMap it would leave every
    node retrying a download forever.
    """
    if not uri.lower().startswith(FETCHABLE_SCHEMES):
        raise PermanentError(
            f"rollout {rollout}: version {version}'s bundle is at {uri!r}, which no "
            "edge node can fetch; use an MLflow server with --serve-artifacts "
            "(EDGELOOP_REGISTRY__TRACKING_URI=http://...) or push the bundle with "
            "'edgeloop models export --to oci://...'"
        )


def with_previous_drift(
    view: planning.RegistryView, fleet: FleetSource
) -> planning.RegistryView:
    """Feed the drift gate: per node, the drifted share on the version being replaced.

    Only fleet sources that know history (the intake) can answer; others leave
    the gate without a baseline, and it is skipped as before.
    """
    previous = view.desired.last_known_good
    source = getattr(fleet, "drift_by_node", None)
    if view.previous_drifted_share is not None or previous is None or source is None:
        return view
    shares = source(previous.version)
    return replace(view, previous_drifted_share=shares) if shares else view


@dataclass
class Outcome:
    """What one reconcile did."""

    rollout: EdgeRollout
    plan: planning.Plan
    objects: list[dict[str, Any]] = field(default_factory=list)
    changed: bool = False


@dataclass
class Reconciler:
    """plan -> render -> validate -> sink, for any rollout."""

    registry_view: Callable[[EdgeRollout], planning.RegistryView]
    fleet: FleetSource
    sink: Sink | None
    clock: Callable[[], float] = time.time
    silent_after_s: float = 300.0

    def reconcile(
        self, rollout: EdgeRollout, *, dry_run: bool = False, promote: bool = False
    ) -> Outcome:
        """One step; with ``dry_run`` nothing is written anywhere."""
        now = self.clock()
        view = with_previous_drift(self.registry_view(rollout), self.fleet)
        result = planning.plan(
            rollout,
            view,
            self.fleet.observe(),
            now,
            node_labels=self.fleet.labels(),
            silent_after_s=self.silent_after_s,
            promote=promote,
        )
        name, namespace = rollout.metadata.name, rollout.metadata.namespace
        objects: list[dict[str, Any]] = []
        for group in rollout.spec.groups:
            desired = result.desired.get(group.name)
            overrides = {
                n: d.model_copy(update={"rollout": name})
                for n in result.nodes.get(group.name, [])
                if (d := result.node_desired.get(n)) is not None
            }
            if desired is None and not overrides:
                continue
            shown = desired or next(iter(overrides.values()))
            objects += render_group(
                GroupRender(
                    rollout=name,
                    namespace=namespace,
                    spec=rollout.spec,
                    group=group,
                    desired=shown.model_copy(update={"rollout": name}),
                    replicas=max(1, len(result.nodes.get(group.name, []))),
                    overrides=overrides,
                    group_default=desired is not None,
                )
            )
        if getattr(self.sink, "reaches_cluster", True) and self.sink is not None:
            for record in (view.desired, view.desired.last_known_good):
                if record is not None:
                    require_fetchable(record.bundle_uri, record.version, name)
        validate.validate_all(objects)
        updated = rollout.model_copy(update={"status": result.status})
        changed = False
        if not dry_run and self.sink is not None:
            message = commit_message(
                name,
                view.desired.model_name,
                view.desired.version,
                result.status.wave,
                result.status.phase,
                {"bundle_sha256": view.desired.bundle_sha256},
            )
            changed = self.sink.apply(name, objects, result.nodes, message)
        return Outcome(updated, result, objects, changed)
