"""Build the planner's :class:`RegistryView` from the MLflow registry.

Only each version's ``bundle.json`` is read (for its latency profile), through
the registry's per-version cache: a reconcile downloads no model.
"""

from __future__ import annotations

from edgeloop.provenance.registry import ModelRef, Registry
from edgeloop.rollout.plan import RegistryView
from edgeloop.rollout.spec import EdgeRollout
from edgeloop_agent.contracts import DesiredModel


def desired_record(
    registry: Registry, name: str, version: int, rollout: str
) -> DesiredModel:
    """The DesiredModel an agent is given for one version."""
    info = registry.show(ModelRef(name, version=version))
    return DesiredModel(
        model_name=name,
        version=str(version),
        bundle_uri=registry.bundle_location(name, version),
        bundle_sha256=info["bundle_sha256"],
        rollout=rollout,
    )


def registry_view(registry: Registry, rollout: EdgeRollout) -> RegistryView:
    """Resolve the followed alias/version, with the last-known-good attached."""
    selector = rollout.spec.model
    version = registry.resolve(
        ModelRef(selector.name, selector.alias, selector.version)
    )
    name = rollout.metadata.name
    record = desired_record(registry, selector.name, version, name)
    lkg_version = rollout.status.lastKnownGood or (
        rollout.status.modelVersion if rollout.status.phase == "Succeeded" else ""
    )
    if lkg_version and lkg_version != str(version):
        lkg = desired_record(registry, selector.name, int(lkg_version), name)
        record = record.model_copy(update={"last_known_good": lkg})
    manifest = registry.manifest(ModelRef(selector.name, version=version))
    return RegistryView(desired=record, latency=tuple(manifest.latency))
