"""Thin HTTP routes: parse, call the service, shape the answer.

Open Inference Protocol v2 (health, server/model metadata, readiness, infer)
plus ``/predict`` for raw readings and ``/metrics`` for Prometheus.
"""

from __future__ import annotations

import json
import time
from typing import Any, TypeVar

import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from edgeloop_agent import __version__
from edgeloop_agent.api import binary
from edgeloop_agent.api.schemas import (
    ErrorBody,
    InferRequest,
    PredictRequest,
    PredictResponse,
)
from edgeloop_agent.errors import InputError, ModelNotFoundError, ModelNotReadyError
from edgeloop_agent.metrics import CONTENT_TYPE
from edgeloop_agent.readings import parse_values
from edgeloop_agent.scoring.model_store import LoadedModel
from edgeloop_agent.service import ScoringService, missing_sensors

router = APIRouter()
_Body = TypeVar("_Body", bound=BaseModel)
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (404, 413, 422, 503)
}


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type="application/json",
    )


def _service(request: Request) -> ScoringService:
    service: ScoringService = request.app.state.service
    return service


def _model(request: Request, name: str, version: str | None = None) -> LoadedModel:
    return model_named(request.app, name, version)


def model_named(app: Any, name: str, version: str | None = None) -> LoadedModel:
    """The active model if ``name`` (and ``version``) address it, else the OIP error."""
    model: LoadedModel | None = app.state.service.active
    if model is None:
        raise ModelNotReadyError("no verified model is active yet")
    if name not in (model.name, app.state.settings.model.name_alias):
        raise ModelNotFoundError(
            f"model '{name}' is not served here; this agent serves '{model.name}'"
        )
    if version is not None and version != model.version:
        raise ModelNotFoundError(
            f"model '{name}' version '{version}' is not active; active is '{model.version}'"
        )
    return model


@router.get("/v2/health/live", tags=["health"])
def live() -> dict[str, bool]:
    """The process is up."""
    return {"live": True}


@router.get("/v2/health/ready", tags=["health"], responses={503: {"model": ErrorBody}})
def ready(request: Request) -> Response:
    """Ready means a verified model is active."""
    active = _service(request).active is not None
    return _json({"ready": active}, 200 if active else 503)


@router.get("/v2", tags=["metadata"])
def server_metadata() -> dict[str, Any]:
    """Server metadata (Open Inference Protocol)."""
    return {
        "name": "edgeloop-agent",
        "version": __version__,
        "extensions": ["binary_tensor_data"],
    }


def _metadata(model: LoadedModel) -> dict[str, Any]:
    n = len(model.manifest.features.input_names())
    output = model.manifest.output
    return {
        "name": model.name,
        "versions": [model.version],
        # a monitor-only bundle has no model: nothing to infer with, no outputs
        "platform": "onnxruntime_onnx" if output is not None else "",
        "inputs": [
            {"name": model.manifest.input_name, "datatype": "FP32", "shape": [-1, n]}
        ],
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
            {"name": "alarm", "datatype": "BOOL", "shape": [-1]},
        ]
        if output is not None
        else [],
        "parameters": {
            "bundle_sha256": model.digest,
            "threshold": None if output is None else output.threshold,
            "monitor_only": output is None,
            "input_names": model.manifest.features.input_names(),
        },
    }


@router.get("/v2/models/{name}", tags=["metadata"], responses=_ERRORS)
def model_metadata(request: Request, name: str) -> dict[str, Any]:
    """Model metadata: input tensor shape and names, outputs, bundle digest."""
    return _metadata(_model(request, name))


@router.get(
    "/v2/models/{name}/versions/{version}", tags=["metadata"], responses=_ERRORS
)
def model_version_metadata(request: Request, name: str, version: str) -> dict[str, Any]:
    """Model metadata for an explicit version."""
    return _metadata(_model(request, name, version))


@router.get("/v2/models/{name}/ready", tags=["health"], responses=_ERRORS)
def model_ready(request: Request, name: str) -> dict[str, Any]:
    """The named model is active and verified."""
    model = _model(request, name)
    return {"name": model.name, "ready": True}


BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("post", "/v2/models/{name}/infer"): InferRequest,
    ("post", "/v2/models/{name}/versions/{version}/infer"): InferRequest,
    ("post", "/predict"): PredictRequest,
}
"""Routes that parse their own body, and the model each one reads."""


async def _parse(request: Request, model: type[_Body]) -> _Body:
    """Parse with pydantic-core straight from bytes (faster than json.loads + validate).

    Scoring routes are ``async``: a row scores in ~10 µs, less than a hop to the
    threadpool costs, and the agent runs on one core anyway.
    """
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc


@router.post(
    "/v2/models/{name}/infer",
    tags=["inference"],
    responses=_ERRORS,
)
async def infer(request: Request, name: str) -> Response:
    """Score FP32 model inputs (Open Inference Protocol v2, JSON or binary tensors)."""
    model = _model(request, name)
    return _infer(request, model, *await binary.parse_infer(request))


@router.post(
    "/v2/models/{name}/versions/{version}/infer",
    tags=["inference"],
    responses=_ERRORS,
)
async def infer_version(request: Request, name: str, version: str) -> Response:
    """Score FP32 model inputs against an explicit version."""
    model = _model(request, name, version)
    return _infer(request, model, *await binary.parse_infer(request))


def _numbers_only(data: list[Any]) -> None:
    """Refuse strings and booleans anywhere in the tensor (numpy would convert "1")."""
    stack: list[Any] = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif item is not None and (
            isinstance(item, bool) or not isinstance(item, int | float)
        ):
            raise TypeError(f"not a number: {item!r}")


def _infer(
    request: Request, model: LoadedModel, body: InferRequest, blob: bytes = b""
) -> Response:
    """Score one OIP v2 infer request on ``model``.

    Long: the Open Inference Protocol's request checks come in the order the spec lists them, each with its own error.
    """
    start = time.perf_counter()
    if len(body.inputs) != 1:
        raise InputError(
            f"inputs: expected exactly one tensor named '{model.manifest.input_name}'"
        )
    tensor = body.inputs[0]
    if tensor.name != model.manifest.input_name:
        raise InputError(
            f"inputs[0].name: unknown input '{tensor.name}'; the model takes '{model.manifest.input_name}'"
        )
    n_inputs = model.manifest.features.n_inputs
    if len(tensor.shape) != 2 or tensor.shape[1] != n_inputs or tensor.shape[0] < 0:
        raise InputError(
            f"inputs[0].shape: expected [batch, {n_inputs}], got {tensor.shape}"
        )
    array = binary.input_values(tensor, blob)
    if array is None:
        if tensor.data is None:
            raise InputError(
                "inputs[0].data: missing (or send it as binary: parameters.binary_data_size)"
            )
        try:
            _numbers_only(tensor.data)
            array = np.asarray(tensor.data, dtype=np.float32).reshape(-1)
        except (ValueError, TypeError) as exc:
            raise InputError(
                "inputs[0].data: expected numbers or null (flat or nested lists of equal length)"
            ) from exc
    if array.size != tensor.shape[0] * tensor.shape[1]:
        raise InputError(
            f"inputs[0].data: {array.size} values do not fill shape {tensor.shape}"
        )
    # null (or NaN) is a missing input, as on /predict: the trees route it
    # down their learned missing-value branch. Infinity is never a reading.
    if np.isinf(array).any():
        raise InputError("inputs[0].data: values must be finite or null")
    scored = _service(request).score_inputs(array.reshape(tensor.shape[0], n_inputs))
    wanted = (
        {o.name for o in body.outputs} if body.outputs else {"probabilities", "alarm"}
    )
    unknown = wanted - {"probabilities", "alarm"}
    if unknown:
        raise InputError(
            f"outputs: unknown output '{sorted(unknown)[0]}'; available: probabilities, alarm"
        )
    scores = scored.scores.astype(np.float32)
    tensors: list[tuple[str, str, list[int], np.ndarray]] = []
    if "probabilities" in wanted:
        probs = np.stack([1.0 - scores, scores], axis=1)
        tensors.append(("probabilities", "FP32", [len(scores), 2], probs))
    if "alarm" in wanted:
        tensors.append(("alarm", "BOOL", [len(scores)], scored.alarms))
    outputs, blobs = binary.outputs(body, tensors)
    _record(request, start)
    answer: dict[str, Any] = {
        "model_name": model.name,
        "model_version": scored.model.version,
        "outputs": outputs,
    }
    if body.id is not None:
        answer["id"] = body.id
    if blobs:
        return binary.response(answer, blobs)
    return _json(answer)


@router.post(
    "/predict",
    tags=["inference"],
    response_model=PredictResponse,
    responses=_ERRORS,
)
async def predict(request: Request) -> Response:
    """Score raw readings: the agent keeps each entity's history and computes the model inputs."""
    start = time.perf_counter()
    body = await _parse(request, PredictRequest)
    service = _service(request)
    model = service.active
    if model is None:
        raise ModelNotReadyError("no verified model is active yet")
    sensors = model.manifest.features.sensors
    values = np.stack(
        [
            parse_values(r.values, sensors, where=f"readings[{i}].values")
            for i, r in enumerate(body.readings)
        ]
    )
    entities = [r.entity for r in body.readings]
    stamps = [
        None if r.timestamp is None else r.timestamp.timestamp() for r in body.readings
    ]
    scored = service.score_readings(entities, values, stamps)
    gaps = missing_sensors(values, sensors)
    degraded = sum(1 for g in gaps if g)
    if degraded:
        service.metrics.inc("edgeloop_degraded_readings_total", by=degraded)
    _record(request, start)
    output = scored.model.manifest.output
    return _json(
        {
            "model_name": scored.model.name,
            "model_version": scored.model.version,
            "threshold": None if output is None else output.threshold,
            "monitor_only": output is None,
            "results": [
                {
                    "entity": e,
                    "score": None if output is None else float(s),
                    "alarm": bool(a),
                    "degraded": bool(g),
                }
                | ({"missing": list(g)} if g else {})
                | ({"explanation": scored.explanation(i)} if a else {})
                for i, (e, s, a, g) in enumerate(
                    zip(entities, scored.scores, scored.alarms, gaps, strict=True)
                )
            ],
        }
    )


def _record(request: Request, start: float) -> None:
    endpoint = "predict" if request.url.path == "/predict" else "infer"
    request.app.state.metrics.request(endpoint, 200, time.perf_counter() - start)


@router.get("/metrics", tags=["metrics"])
def metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition 0.0.4): scoring, drift, outbox, process."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)
