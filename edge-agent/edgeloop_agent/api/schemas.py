"""Request/response models of the agent's HTTP API (documented in OpenAPI).

The V2 models follow the Open Inference Protocol's REST JSON shapes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictFloat


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class InferInput(_In):
    """One input tensor; ``data`` is row-major, flat or nested.

    With the binary tensor extension ``data`` is absent and
    ``parameters.binary_data_size`` says how many bytes of the body after the
    JSON header (``Inference-Header-Content-Length``) hold it, little-endian.
    """

    name: str
    shape: list[int] = Field(min_length=1, max_length=4)
    datatype: Literal["FP32", "FP64"]
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class RequestedOutput(_In):
    """An output the client wants back (all when none is named)."""

    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(_In):
    """``POST /v2/models/{name}/infer``."""

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[InferInput] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = None


class Reading(_In):
    """One raw reading of one entity (pump)."""

    entity: str = Field(min_length=1, max_length=253)
    values: dict[str, StrictFloat | None]
    """Every sensor of the model by name; ``null`` for a dropout. Numbers only:
    ``"50"`` (a string) or ``true`` is refused with 422, never guessed at."""
    timestamp: AwareDatetime | None = None
    """When the reading was taken (ISO 8601 with offset); the agent's clock when omitted."""


class PredictRequest(_In):
    """``POST /predict``: one reading or a batch, in arrival order."""

    readings: list[Reading] = Field(min_length=1)


class Contribution(BaseModel):
    """One sensor's share of an alarm: how far the score drops when it looks ordinary."""

    sensor: str
    contribution: float


class PredictResult(BaseModel):
    """Score of one reading."""

    entity: str
    score: float | None
    """None when the bundle is monitor-only (no model scores the reading)."""
    alarm: bool
    degraded: bool = False
    """Some sensors were missing (``null``): scored without them."""
    missing: list[str] = Field(default_factory=list)
    """The missing sensors, present only when ``degraded``."""
    explanation: list[Contribution] = Field(default_factory=list)
    """On alarms only: the sensors that raised the score most, largest first
    (occlusion against the bundle's reference medians, computed on the node)."""


class PredictResponse(BaseModel):
    """Scores and the model version that produced them."""

    model_name: str
    model_version: str
    threshold: float | None
    """None for a monitor-only bundle."""
    monitor_only: bool = False
    """The bundle has no model: readings only feed drift and data-quality windows."""
    results: list[PredictResult]


class ErrorBody(BaseModel):
    """Every error: ``{"error": "<field>: <rule>"}``."""

    error: str
