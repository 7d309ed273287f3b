"""Wire and file contracts owned by the edge side of the loop.

These pydantic models are the seams between the three packages: the training
pipeline writes a :class:`BundleManifest`, the controller writes a
:class:`DesiredModel`, the agent reads both. Every model carries an
``apiVersion`` so a reader can refuse a shape it does not understand.

Pure pydantic: importing this module must stay cheap (no numpy, no onnxruntime),
because the platform imports it too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Aggregate = Literal["mean", "std", "slope", "max", "min", "last"]

BUNDLE_API_VERSION: Final = "edgeloop.io/bundle/v1"
FEATURES_API_VERSION: Final = "edgeloop.io/features/v1"
DESIRED_MODEL_API_VERSION: Final = "edgeloop.io/desired-model/v1"

#: File names inside a model bundle directory.
MANIFEST_FILE = "bundle.json"
MODEL_FILE = "model.onnx"


class _Strict(BaseModel):
    """Base for contracts: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SensorSpec(_Strict):
    """One raw sensor channel as the edge receives it."""

    name: str = Field(min_length=1)
    unit: str = ""
    min: float | None = None
    """Lowest physically valid value (inclusive); ``None`` means unbounded."""
    max: float | None = None
    """Highest physically valid value (inclusive); ``None`` means unbounded."""

    @model_validator(mode="after")
    def _range_ordered(self) -> SensorSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"sensor {self.name!r}: min {self.min} > max {self.max}")
        return self


class FeatureSpec(_Strict):
    """How raw readings become model inputs (see ``edgeloop_agent.features``)."""

    apiVersion: Literal["edgeloop.io/features/v1"] = FEATURES_API_VERSION
    sensors: tuple[str, ...] = Field(min_length=1)
    """Raw sensor names, in the order the history array holds them."""
    windows: tuple[int, ...] = Field(min_length=1)
    """Window lengths in readings; the longest sets how much history is kept."""
    aggregates: tuple[Aggregate, ...] = Field(min_length=1)

    @field_validator("windows")
    @classmethod
    def _windows_positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(w < 1 for w in value) or len(set(value)) != len(value):
            raise ValueError("windows must be distinct positive reading counts")
        return value

    @field_validator("sensors", "aggregates")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("names must be unique")
        return value

    @property
    def n_inputs(self) -> int:
        """How many model inputs there are, without building their names (hot path)."""
        return len(self.windows) * len(self.sensors) * len(self.aggregates)

    def input_names(self) -> list[str]:
        """Model input names in column order: window, then sensor, then aggregate."""
        return [
            f"{sensor}__{agg}_w{window}"
            for window in self.windows
            for sensor in self.sensors
            for agg in self.aggregates
        ]


class ThresholdPolicyRecord(_Strict):
    """How the training pipeline chose the alarm threshold (recorded, not re-run)."""

    target_precision: float = Field(gt=0.0, le=1.0)
    max_false_alarms_per_asset_month: float | None = None
    min_lead_hours: float = 0.0
    target_alarm_rate: float | None = None
    """Anomaly models: the share of training rows the threshold lets alarm."""
    policy_met: bool
    """False: no threshold met the policy on the holdout; the best-F1 one was used."""
    safe_interval: tuple[float, float] | None = None
    """Every threshold in ``(lo, hi]`` reached the same best recall within the policy."""


class OutputSemantics(_Strict):
    """What the model's score means and when it raises an alarm."""

    score: str = "probability of failure within the horizon"
    horizon_hours: float | None = None
    threshold: float = Field(ge=0.0, le=1.0)
    """Scores at or above this are alarms."""
    positive_label: str = "failure"
    threshold_policy: ThresholdPolicyRecord | None = None


class FeatureReference(_Strict):
    """Training-time distribution of one model input, for drift at the edge."""

    name: str
    bin_edges: tuple[float, ...] = Field(min_length=2)
    """Edges from training quantiles.

    Values outside fall in the first/last bin; NaN is counted apart.
    """
    counts: tuple[int, ...]
    nan_count: int = 0
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _counts_match_bins(self) -> FeatureReference:
        if len(self.counts) != len(self.bin_edges) - 1:
            raise ValueError(
                f"feature {self.name!r}: {len(self.counts)} counts for "
                f"{len(self.bin_edges) - 1} bins"
            )
        return self


class ReferenceSample(_Strict):
    """A small holdout sample, scored by the exported model at build time.

    It is the agent's smoke test and the platform's Evidently reference.
    """

    inputs: tuple[tuple[float | None, ...], ...]
    scores: tuple[float, ...]
    """Empty in a monitor-only bundle (no model scored the sample)."""

    @model_validator(mode="after")
    def _aligned(self) -> ReferenceSample:
        if self.scores and len(self.inputs) != len(self.scores):
            raise ValueError("reference sample inputs and scores differ in length")
        return self


class LatencyProfile(_Strict):
    """Measured cost of the ONNX session under one device profile's threads."""

    device_profile: str
    threads: int
    single_p50_ms: float
    single_p99_ms: float
    batch_size: int
    batch_p50_ms: float
    batch_p99_ms: float
    session_memory_mb: float
    latency_budget_ms: float
    memory_budget_mb: float
    fits: bool
    measured_on: str
    """Machine the numbers were taken on (not necessarily the device itself)."""


class GateResult(_Strict):
    """One gate's verdict, kept with the model for the audit trail."""

    name: str
    passed: bool
    detail: str


class Lineage(_Strict):
    """Where a model came from: enough to reproduce or audit it."""

    data_hash: str
    code_revision: str
    pipeline_run_id: str
    mlflow_run_id: str = ""
    parent_champion: str = ""
    """``name:version`` of the champion it was gated against, empty for the first."""
    dataset_uri: str = ""
    trained_at: str = ""


class FeatureImportance(_Strict):
    """Global importance of one model version (see ``edgeloop_components.importance``)."""

    by_sensor: dict[str, float]
    """Mean |SHAP| on the holdout summed per sensor, as shares summing to 1."""
    gain_by_input: dict[str, float] = Field(default_factory=dict)
    mean_abs_shap_by_input: dict[str, float] = Field(default_factory=dict)


BundleKind = Literal["model", "monitor-only"]


class BundleManifest(_Strict):
    """``bundle.json``: everything an edge node needs besides ``model.onnx``.

    A ``monitor-only`` bundle has no model at all (no ``model.onnx``, no score,
    no threshold): it carries the reference profile of a history without labels,
    and the agent serving it keeps drift and data-quality windows only
    (``edgeloop data profile``; docs/data-contract.md, "Your data").
    """

    apiVersion: Literal["edgeloop.io/bundle/v1"] = BUNDLE_API_VERSION
    kind: BundleKind = "model"
    model_name: str
    model_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    """sha256 of ``model.onnx``; required for a model bundle, absent in a monitor-only one."""
    model_bytes: int | None = Field(None, ge=1)
    """Size of ``model.onnx``: agents stop a download that grows past it (bundles
    built before this field use the agent's ``max_bundle_bytes`` instead)."""
    input_name: str = "input"
    features: FeatureSpec
    sensors: tuple[SensorSpec, ...]
    entity_column: str
    time_column: str
    output: OutputSemantics | None = None
    """What the score means and the alarm threshold; required for a model bundle."""
    reference: tuple[FeatureReference, ...]
    reference_sample: ReferenceSample
    metrics: dict[str, float | None] = Field(default_factory=dict)
    gates: tuple[GateResult, ...] = ()
    latency: tuple[LatencyProfile, ...] = ()
    lineage: Lineage
    importance: FeatureImportance | None = None
    """Classifiers only: which sensors drive the model (anomaly models: ``None``)."""

    @property
    def monitor_only(self) -> bool:
        """No model: drift and data-quality windows only."""
        return self.kind == "monitor-only"

    def scoring(self) -> OutputSemantics:
        """The output semantics of a model bundle.

        Raises:
            ValueError: a monitor-only bundle has no score (callers that
                handle both kinds check :attr:`monitor_only` first).
        """
        if self.output is None:
            raise ValueError(f"{self.model_name}: a monitor-only bundle has no score")
        return self.output

    @model_validator(mode="after")
    def _kind_fits(self) -> BundleManifest:
        if self.kind == "model":
            if self.model_sha256 is None or self.output is None:
                raise ValueError("a model bundle needs model_sha256 and output")
            if len(self.reference_sample.scores) != len(self.reference_sample.inputs):
                raise ValueError("reference sample inputs and scores differ in length")
        elif (
            self.model_sha256 is not None
            or self.model_bytes is not None
            or self.output is not None
            or self.reference_sample.scores
        ):
            raise ValueError(
                "a monitor-only bundle has no model: no model_sha256, model_bytes, "
                "output or reference scores"
            )
        return self

    @model_validator(mode="after")
    def _consistent(self) -> BundleManifest:
        names = self.features.input_names()
        if [ref.name for ref in self.reference] != names:
            raise ValueError(
                "reference profile does not list the model inputs in order"
            )
        sensor_names = tuple(s.name for s in self.sensors)
        if sensor_names != self.features.sensors:
            raise ValueError("sensor specs do not match the feature spec's sensors")
        width = {len(row) for row in self.reference_sample.inputs}
        if width and width != {len(names)}:
            raise ValueError("reference sample rows do not have one value per input")
        return self


class DesiredModel(_Strict):
    """What one node should serve; rendered into a ConfigMap the agent mounts."""

    apiVersion: Literal["edgeloop.io/desired-model/v1"] = DESIRED_MODEL_API_VERSION
    model_name: str
    version: str
    bundle_uri: str
    """Directory or URL of the bundle (``bundle.json`` + ``model.onnx`` under it)."""
    bundle_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """sha256 of ``bundle.json``, which in turn pins ``model.onnx``."""
    activate_at: datetime | None = None
    last_known_good: DesiredModel | None = None
    rollout: str = ""
