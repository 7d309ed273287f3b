"""The common Open Inference Protocol request, answered without pydantic or Starlette.

Nearly every inference request a node sees is the same shape: one FP32
tensor named as the model's input, ``[rows, n_inputs]``, numbers in a flat
or row-nested list, maybe an ``id``. This module recognises exactly that
shape with orjson and plain type checks, scores it through the same
:meth:`ScoringService.score_inputs` (metrics, drift windows, explanations)
and builds the same answer as :func:`edgeloop_agent.api.routes.infer`.

Anything else (named outputs, parameters, binary tensors, nulls, strings,
booleans, a wrong shape, invalid JSON) returns None here and goes to the
routed handler, so every error keeps its exact message: this path has no
error messages of its own except those the service and the model lookup raise.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import orjson

from edgeloop_agent.scoring.model_store import LoadedModel

_NUMBERS = frozenset((int, float))
_REQUEST_KEYS = frozenset(("id", "inputs"))
_TENSOR_KEYS = frozenset(("name", "shape", "datatype", "data"))


def _values(data: Any, rows: int, width: int) -> list[Any] | None:
    """The tensor's values as one flat list, or None when not plainly numbers."""
    if type(data) is not list or not data:
        return None
    if type(data[0]) is list:  # nested: one list per row, each ``width`` long
        if len(data) != rows or any(
            type(row) is not list or len(row) != width for row in data
        ):
            return None
        flat = [value for row in data for value in row]
    else:
        flat = data
    if len(flat) != rows * width or not set(map(type, flat)) <= _NUMBERS:
        return None
    return flat


def _inputs(body: Any, input_name: str, width: int) -> np.ndarray | None:
    """The ``[rows, width]`` float32 inputs of a plain request, or None."""
    if type(body) is not dict or not body.keys() <= _REQUEST_KEYS:
        return None
    ident = body.get("id")
    tensors = body.get("inputs")
    if (ident is not None and type(ident) is not str) or type(tensors) is not list:
        return None
    if len(tensors) != 1 or type(tensors[0]) is not dict:
        return None
    tensor = tensors[0]
    if tensor.keys() != _TENSOR_KEYS or tensor["name"] != input_name:
        return None
    shape = tensor["shape"]
    if (
        tensor["datatype"] not in ("FP32", "FP64")
        or type(shape) is not list
        or len(shape) != 2
        or type(shape[0]) is not int
        or shape[0] < 1
        or shape[1] != width
        or type(shape[1]) is not int
    ):
        return None
    flat = _values(tensor["data"], shape[0], width)
    if flat is None:
        return None
    with np.errstate(over="ignore"):
        array = np.array(flat, dtype=np.float32)
    if not np.isfinite(array).all():  # too large for FP32: the routed path says so
        return None
    return array.reshape(shape[0], width)


def answer(app: Any, model: LoadedModel, raw: bytes) -> bytes | None:
    """The JSON answer to a plain infer request for ``model``, or None to route it.

    Raises the same errors as the routed handler for scoring (batch too
    large, a monitor-only bundle, a model that fails); the caller turns them
    into the same JSON answers.
    """
    start = time.perf_counter()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    inputs = _inputs(body, model.manifest.input_name, model.manifest.features.n_inputs)
    if inputs is None:
        return None
    scored = app.state.service.score_inputs(inputs)
    scores = scored.scores.astype(np.float32)
    rows = len(scores)
    probabilities = np.empty((rows, 2), dtype=np.float32)
    probabilities[:, 0] = 1.0 - scores
    probabilities[:, 1] = scores
    app.state.metrics.request("infer", 200, time.perf_counter() - start)
    result: dict[str, Any] = {
        "model_name": model.name,
        "model_version": scored.model.version,
        "outputs": [
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [rows, 2],
                "data": probabilities.reshape(-1).tolist(),
            },
            {
                "name": "alarm",
                "datatype": "BOOL",
                "shape": [rows],
                "data": scored.alarms.tolist(),
            },
        ],
    }
    if "id" in body and body["id"] is not None:
        result["id"] = body["id"]
    return orjson.dumps(result)
