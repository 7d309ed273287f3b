"""Contracts owned by the edge side: wire/file models and bundle verification.

The platform and the pipeline may import this package (and ``features``) from
the agent, nothing else; import-linter enforces it.
"""

from edgeloop_agent.contracts.bundle_files import (
    bundle_digest,
    file_sha256,
    read_manifest,
    verify_bundle,
)
from edgeloop_agent.contracts.errors import (
    BundleError,
    ContractError,
    EdgeloopError,
    PermanentError,
    RetryableError,
    retry_delay,
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
    ThresholdPolicyRecord,
)
from edgeloop_agent.contracts.registration import RegisteredModel
from edgeloop_agent.contracts.reports import (
    REPORT_API_VERSION,
    DriftWindow,
    FeatureWindow,
    Heartbeat,
    ReadingsBatch,
    Report,
    ReportBatch,
    RowSample,
    SensorQuality,
    merge_windows,
)

__all__ = [
    "BUNDLE_API_VERSION",
    "DESIRED_MODEL_API_VERSION",
    "FEATURES_API_VERSION",
    "MANIFEST_FILE",
    "MODEL_FILE",
    "REPORT_API_VERSION",
    "Aggregate",
    "BundleError",
    "BundleManifest",
    "ContractError",
    "DesiredModel",
    "DriftWindow",
    "EdgeloopError",
    "FeatureReference",
    "FeatureSpec",
    "FeatureWindow",
    "GateResult",
    "Heartbeat",
    "LatencyProfile",
    "Lineage",
    "OutputSemantics",
    "PermanentError",
    "ReadingsBatch",
    "ReferenceSample",
    "RegisteredModel",
    "Report",
    "ReportBatch",
    "RetryableError",
    "RowSample",
    "SensorQuality",
    "SensorSpec",
    "ThresholdPolicyRecord",
    "bundle_digest",
    "file_sha256",
    "merge_windows",
    "read_manifest",
    "retry_delay",
    "verify_bundle",
]
