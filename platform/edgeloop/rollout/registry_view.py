"""Build the planner's :class:`RegistryView` from the MLflow registry."""

from __future__ import annotations

import tempfile
from pathlib import Path

from edgeloop.registry import ModelRef, Registry
from edgeloop.rollout.plan import RegistryView
from edgeloop.rollout.spec import EdgeRollout
from edgeloop_agent.contracts import DesiredModel, read_manifest


def desired_record(
    registry: Registry, name: str, version: int, rollout: str
) -> tuple[DesiredModel, Path]:
    """The DesiredModel for one version, and a verified local copy of its bundle."""
    info = registry.show(ModelRef(name, version=version))
    tmp = Path(tempfile.mkdtemp(prefix="edgeloop-view-"))
    _, bundle = registry.download(ModelRef(name, version=version), tmp)
    record = DesiredModel(
        model_name=name,
        version=str(version),
        bundle_uri=registry.bundle_location(name, version),
        bundle_sha256=info["bundle_sha256"],
        rollout=rollout,
    )
    return record, bundle


def registry_view(registry: Registry, rollout: EdgeRollout) -> RegistryView:
    """Resolve the followed alias/version, with the last-known-good attached."""
    selector = rollout.spec.model
    version = registry.resolve(
        ModelRef(selector.name, selector.alias, selector.version)
    )
    name = rollout.metadata.name
    record, bundle = desired_record(registry, selector.name, version, name)
    lkg_version = rollout.status.lastKnownGood or (
        rollout.status.modelVersion if rollout.status.phase == "Succeeded" else ""
    )
    if lkg_version and lkg_version != str(version):
        lkg, _ = desired_record(registry, selector.name, int(lkg_version), name)
        record = record.model_copy(update={"last_known_good": lkg})
    manifest = read_manifest(bundle)
    return RegistryView(desired=record, latency=tuple(manifest.latency))
