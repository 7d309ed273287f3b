"""Contracts owned by the edge side: wire/file models and bundle verification.

The platform and the pipeline may import this package (and ``features``) from
the agent, nothing else; import-linter enforces it.
"""

from edgeloop_agent.contracts.bundle_files import (
    BundleError,
    ContractError,
    bundle_digest,
    file_sha256,
    read_manifest,
    verify_bundle,
)
from edgeloop_agent.contracts.models import (
    BUNDLE_API_VERSION,
    DESIRED_MODEL_API_VERSION,
    FEATURES_API_VERSION,
    MANIFEST_FILE,
    MODEL_FILE,
    Aggregate,
    BundleManifest,
    DesiredModel,
    FeatureReference,
    FeatureSpec,
    GateResult,
    LatencyProfile,
    Lineage,
    OutputSemantics,
    ReferenceSample,
    SensorSpec,
)

__all__ = [
    "BUNDLE_API_VERSION",
    "DESIRED_MODEL_API_VERSION",
    "FEATURES_API_VERSION",
    "MANIFEST_FILE",
    "MODEL_FILE",
    "Aggregate",
    "BundleError",
    "BundleManifest",
    "ContractError",
    "DesiredModel",
    "FeatureReference",
    "FeatureSpec",
    "GateResult",
    "LatencyProfile",
    "Lineage",
    "OutputSemantics",
    "ReferenceSample",
    "SensorSpec",
    "bundle_digest",
    "file_sha256",
    "read_manifest",
    "verify_bundle",
]
