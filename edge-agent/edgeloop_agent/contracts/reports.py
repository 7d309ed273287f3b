"""Agent -> intake reports: heartbeats, drift window summaries, row samples, readings.

Every report travels in a :class:`Report` envelope with an idempotency ``key``
made once, when the report is created, and kept through every retry: delivery
is at least once, and the receiver deduplicates by key. Window counts are plain
integers over the bundle's reference bins, so summaries from many windows or
nodes merge by addition (:func:`merge_windows`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

REPORT_API_VERSION: Final = "edgeloop.io/report/v1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Names the intake stores, indexes and turns into Parquet partitions and
# MQTT topics: bounded, no control characters, no path separators.
Name = Annotated[
    str,
    Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9_][A-Za-z0-9._:@+\-]*$"),
]
"""A site, model or version name."""
OptionalName = Annotated[
    str, Field(max_length=253, pattern=r"^([A-Za-z0-9_][A-Za-z0-9._:@+\- ]*)?$")
]
"""A name that may be empty (no cohort, no model yet); spaces allowed inside."""
Version = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_][A-Za-z0-9._:@+\-]*$"),
]
"""A model version (the registry's number, or a bundle digest's prefix)."""
OptionalVersion = Annotated[
    str, Field(max_length=64, pattern=r"^([A-Za-z0-9_][A-Za-z0-9._:@+\-]*)?$")
]
ColumnName = Annotated[
    str, Field(min_length=1, max_length=253, pattern=r"^[^\x00-\x1f/\\]+$")
]
"""A sensor or feature name: printable, no path separators."""
Entity = Annotated[str, Field(max_length=253)]
"""A pump (entity) id as the gateway's data names it."""


class Heartbeat(_Strict):
    """Liveness and serving health of one node."""

    kind: Literal["heartbeat"] = "heartbeat"
    site: Name
    cohort: OptionalName = ""
    model_name: OptionalName = ""
    model_version: OptionalVersion = ""
    """Active version; empty while no verified model is active."""
    bundle_sha256: str = ""
    requests: int = Field(ge=0)
    errors: int = Field(ge=0)
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    outbox_depth: int = Field(ge=0)
    outbox_dropped: int = Field(0, ge=0)
    """Reports the full outbox dropped since the node's outbox was created."""
    dead_letters: int = Field(0, ge=0)
    """Reports the intake would never take, set aside on the node."""
    last_model_failure: str = ""
    uptime_s: float = Field(ge=0)


class FeatureWindow(_Strict):
    """One model input's histogram over the reference bins in one window."""

    name: ColumnName
    counts: tuple[int, ...]
    nan_count: int = Field(0, ge=0)
    psi: float


class SensorQuality(_Strict):
    """Data-quality counts of one raw sensor in one window (kept apart from drift)."""

    name: ColumnName
    readings: int = Field(ge=0)
    nan_count: int = Field(0, ge=0)
    out_of_range: int = Field(0, ge=0)
    spikes: int = Field(0, ge=0)
    stuck_entities: tuple[str, ...] = ()
    """Entities whose value did not change for the configured run length."""


class DriftWindow(_Strict):
    """Summary of one window of scored readings."""

    kind: Literal["drift"] = "drift"
    site: Name
    cohort: OptionalName = ""
    model_name: Name
    model_version: Version
    window_start: datetime
    window_end: datetime
    rows: int = Field(ge=0)
    features: tuple[FeatureWindow, ...]
    psi_threshold: float
    drifted_share: float = Field(ge=0, le=1)
    """Share of model inputs whose PSI is at or above ``psi_threshold``."""
    score_counts: tuple[int, ...] = ()
    """Histogram of scores over ten equal bins on [0, 1]."""
    alarms: int = Field(0, ge=0)
    alarm_causes: dict[ColumnName, int] = Field(default_factory=dict, max_length=256)
    """Alarms of the window counted by the sensor their explanation named first
    (occlusion on the node); alarms with no explanation are not counted."""
    quality: tuple[SensorQuality, ...] = ()
    merged_from: tuple[str, ...] = ()
    """Keys of windows merged into this one when the outbox was full."""


class RowSample(_Strict):
    """A bounded reservoir sample of scored rows from one window."""

    kind: Literal["sample"] = "sample"
    site: Name
    cohort: OptionalName = ""
    model_name: Name
    model_version: Version
    window_end: datetime
    columns: tuple[ColumnName, ...]
    rows: tuple[tuple[float | None, ...], ...]
    scores: tuple[float | None, ...]
    """None where no model scored the row (a monitor-only bundle)."""
    entities: tuple[Entity, ...] = ()

    @model_validator(mode="after")
    def _aligned(self) -> RowSample:
        if len(self.rows) != len(self.scores):
            raise ValueError("rows and scores differ in length")
        if any(len(r) != len(self.columns) for r in self.rows):
            raise ValueError("every row needs one value per column")
        return self


class ReadingsBatch(_Strict):
    """Raw readings a node scored, sent for retraining (``outbox.upload_readings``).

    The platform keeps them as Parquet partitions by model, site and day, the
    fresh data window of the next training run.
    """

    kind: Literal["readings"] = "readings"
    site: Name
    cohort: OptionalName = ""
    model_name: Name
    model_version: Version
    columns: tuple[ColumnName, ...] = Field(min_length=1)
    """Sensor names, in the order of each row."""
    entities: tuple[Entity, ...]
    timestamps: tuple[datetime, ...]
    rows: tuple[tuple[float | None, ...], ...]
    scores: tuple[float, ...]
    """What the model said about each reading (the predictions delayed labels are joined with)."""
    alarms: tuple[bool, ...]

    @model_validator(mode="after")
    def _aligned(self) -> ReadingsBatch:
        lengths = {
            len(self.entities),
            len(self.timestamps),
            len(self.rows),
            len(self.scores),
            len(self.alarms),
        }
        if len(lengths) != 1:
            raise ValueError(
                "entities, timestamps, rows, scores and alarms differ in length"
            )
        if any(len(r) != len(self.columns) for r in self.rows):
            raise ValueError("every row needs one value per column")
        return self


ReportBody = Annotated[
    Heartbeat | DriftWindow | RowSample | ReadingsBatch, Field(discriminator="kind")
]


class Report(_Strict):
    """The envelope every report travels in."""

    apiVersion: Literal["edgeloop.io/report/v1"] = REPORT_API_VERSION
    key: str = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")
    node: str = Field(min_length=1, max_length=253)
    created_at: datetime
    body: ReportBody


class ReportBatch(_Strict):
    """What the agent POSTs to the intake."""

    reports: tuple[Report, ...] = Field(min_length=1)


def merge_windows(
    first: DriftWindow, second: DriftWindow, keys: tuple[str, ...]
) -> DriftWindow:
    """Add two windows of the same model version into one (counts add up).

    PSI is not additive; the merged window keeps the larger per-feature PSI,
    and the receiver recomputes PSI from the summed counts.
    """
    if (first.model_name, first.model_version) != (
        second.model_name,
        second.model_version,
    ):
        raise ValueError("only windows of the same model version merge")
    features = tuple(
        FeatureWindow(
            name=a.name,
            counts=tuple(x + y for x, y in zip(a.counts, b.counts, strict=True)),
            nan_count=a.nan_count + b.nan_count,
            psi=max(a.psi, b.psi),
        )
        for a, b in zip(first.features, second.features, strict=True)
    )
    quality = tuple(
        SensorQuality(
            name=a.name,
            readings=a.readings + b.readings,
            nan_count=a.nan_count + b.nan_count,
            out_of_range=a.out_of_range + b.out_of_range,
            spikes=a.spikes + b.spikes,
            stuck_entities=tuple(sorted(set(a.stuck_entities) | set(b.stuck_entities))),
        )
        for a, b in zip(first.quality, second.quality, strict=True)
    )
    drifted = sum(f.psi >= first.psi_threshold for f in features) / max(
        1, len(features)
    )
    return first.model_copy(
        update={
            "window_start": min(first.window_start, second.window_start),
            "window_end": max(first.window_end, second.window_end),
            "rows": first.rows + second.rows,
            "features": features,
            "drifted_share": drifted,
            "score_counts": tuple(
                x + y
                for x, y in zip(first.score_counts, second.score_counts, strict=True)
            ),
            "alarms": first.alarms + second.alarms,
            "alarm_causes": {
                sensor: first.alarm_causes.get(sensor, 0)
                + second.alarm_causes.get(sensor, 0)
                for sensor in {**first.alarm_causes, **second.alarm_causes}
            },
            "quality": quality,
            "merged_from": tuple(first.merged_from or ())
            + tuple(second.merged_from or ())
            + keys,
        }
    )
