"""The Open Inference Protocol's binary tensor extension, as Triton and KServe serve it.

``tritonclient``'s default (``InferInput.set_data_from_numpy``) sends tensors
as raw bytes after a JSON header whose length is the request header
``Inference-Header-Content-Length``; each input then has
``parameters.binary_data_size`` instead of ``data``. Without the extension
such a request got 422 "Invalid JSON: trailing characters".

Outputs come back as binary when the request says
``parameters.binary_data_output`` (which tritonclient sets when no outputs
are named) or an output's ``parameters.binary_data``; the response then has
the same header and each output ``parameters.binary_data_size``. Little-endian,
BOOL one byte per element, as the extension specifies. A NaN is a missing
input, as ``null`` is in JSON.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from edgeloop_agent.api.schemas import InferInput, InferRequest
from edgeloop_agent.errors import InputError

HEADER = "Inference-Header-Content-Length"
_WIDTH = {"FP32": "<f4", "FP64": "<f8"}
_OUT = {"FP32": "<f4", "BOOL": "|u1"}


async def parse_infer(request: Request) -> tuple[InferRequest, bytes]:
    """The request's JSON part, validated, and the binary bytes after it (maybe none)."""
    raw = await request.body()
    declared = request.headers.get(HEADER)
    if declared is None:
        return _validated(raw), b""
    try:
        size = int(declared)
    except ValueError:
        raise InputError(f"{HEADER}: not a byte count: {declared[:40]!r}") from None
    if not 0 < size <= len(raw):
        raise InputError(f"{HEADER}: {size} is outside the body's {len(raw)} bytes")
    return _validated(raw[:size]), raw[size:]


def _validated(text: bytes) -> InferRequest:
    try:
        return InferRequest.model_validate_json(text)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc


def input_values(tensor: InferInput, blob: bytes) -> np.ndarray | None:
    """The tensor's values from the binary part (flat FP32), or None when it is JSON.

    The agent takes one input tensor, so its bytes must be exactly the
    binary part: a short or long part is refused, never padded or cut.
    """
    size = (tensor.parameters or {}).get("binary_data_size")
    if size is None:
        if blob:
            raise InputError(
                f"{len(blob)} bytes after the JSON header, but inputs[0] has no "
                "parameters.binary_data_size"
            )
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InputError("inputs[0].parameters.binary_data_size: expected a byte count")
    if tensor.data is not None:
        raise InputError(
            "inputs[0]: give data or parameters.binary_data_size, not both"
        )
    if size != len(blob):
        raise InputError(
            f"inputs[0].parameters.binary_data_size: {size} bytes declared, "
            f"{len(blob)} sent after the JSON header"
        )
    dtype = np.dtype(_WIDTH[tensor.datatype])
    if size % dtype.itemsize:
        raise InputError(
            f"inputs[0].parameters.binary_data_size: {size} bytes is not a whole "
            f"number of {tensor.datatype} values"
        )
    return np.frombuffer(blob, dtype=dtype).astype(np.float32)


def _wants_binary(body: InferRequest, name: str) -> bool:
    for output in body.outputs or []:
        if (
            output.name == name
            and output.parameters
            and "binary_data" in output.parameters
        ):
            return bool(output.parameters["binary_data"])
    return bool((body.parameters or {}).get("binary_data_output", False))


def outputs(
    body: InferRequest, tensors: list[tuple[str, str, list[int], np.ndarray]]
) -> tuple[list[dict[str, Any]], list[bytes]]:
    """Output tensors as JSON entries, and the bytes of those asked for as binary."""
    entries: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, datatype, shape, values in tensors:
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
        flat = values.reshape(-1)
        if _wants_binary(body, name):
            data = flat.astype(_OUT[datatype]).tobytes()
            entry["parameters"] = {"binary_data_size": len(data)}
            blobs.append(data)
        else:
            entry["data"] = flat.tolist()
        entries.append(entry)
    return entries, blobs


def response(answer: dict[str, Any], blobs: list[bytes]) -> Response:
    """The JSON header followed by the outputs' bytes, with the header's length."""
    head = json.dumps(answer, separators=(",", ":")).encode()
    return Response(
        head + b"".join(blobs),
        media_type="application/octet-stream",
        headers={HEADER: str(len(head))},
    )
