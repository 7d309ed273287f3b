"""The one place where errors become HTTP responses (JSON ``{"error": ...}``)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from edgeloop_agent.errors import AgentError, ContractError


def _count(app: FastAPI, path: str, status: int) -> None:
    """Count errors of scoring requests only.

    The error-rate gate and the heartbeat are about scoring, not about health
    or metadata probes (which answer 503 until a model is active).
    """
    if path == "/predict":
        app.state.metrics.request("predict", status)
    elif path.endswith("/infer"):
        app.state.metrics.request("infer", status)


def _location(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def respond(app: FastAPI, request: Request, exc: Exception) -> JSONResponse:
    """The JSON error answer for one of our errors or a validation error."""
    return respond_at(app, request.url.path, exc)


def respond_at(app: FastAPI, path: str, exc: Exception) -> JSONResponse:
    """:func:`respond` for a request known by its path (the quick infer path)."""
    if isinstance(exc, RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        _count(app, path, 422)
        return JSONResponse(
            {
                "error": f"{_location(tuple(first['loc']))}: {first['msg']}",
                "detail": [
                    {"loc": _location(tuple(e["loc"])), "msg": e["msg"]} for e in errors
                ],
            },
            status_code=422,
        )
    status = getattr(exc, "status_code", 500)
    message = getattr(exc, "message", str(exc))
    _count(app, path, status)
    return JSONResponse({"error": message}, status_code=status)


HANDLED = (AgentError, ContractError, RequestValidationError)
"""What :func:`respond` answers; anything else is a 500 from the server."""


def install(app: FastAPI) -> None:
    """Register handlers: our errors keep their status; validation is 422."""

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return respond(app, request, exc)

    for kind in HANDLED:
        app.add_exception_handler(kind, handler)
