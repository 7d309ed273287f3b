"""Scoring requests straight to their handlers, without FastAPI's routing.

Profiled on one core, FastAPI routing and dependency resolution were ~35 % of
a single-row request and the model ~7 %. The scoring routes take only the
request and path parameters, so this middleware matches their three paths
itself and calls the same handler functions; errors get the same JSON answers
through :func:`edgeloop_agent.api.errors.respond`. The routes stay registered,
so the OpenAPI document and every other path are unchanged, and a request the
fast path does not recognise goes down the normal stack.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from edgeloop_agent.api import errors, routes

Handler = Callable[..., Awaitable[Response]]


def match(path: str) -> tuple[Handler, dict[str, str]] | None:
    """The scoring handler and path parameters for ``path``, or None."""
    if path == "/predict":
        return routes.predict, {}
    parts = path.split("/")
    # "", "v2", "models", name, ["versions", version,] "infer"
    if (
        len(parts) < 5
        or parts[1] != "v2"
        or parts[2] != "models"
        or parts[-1] != "infer"
    ):
        return None
    name = parts[3]
    if not name:
        return None
    if len(parts) == 5:
        return routes.infer, {"name": name}
    if len(parts) == 7 and parts[4] == "versions" and parts[5]:
        return routes.infer_version, {"name": name, "version": parts[5]}
    return None


class FastScoring:
    """ASGI middleware for ``POST /predict`` and ``POST …/infer``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a scoring request here; pass anything else on."""
        found = (
            match(scope["path"])
            if scope["type"] == "http"
            and scope["method"] == "POST"
            and not scope.get("root_path")
            else None
        )
        if found is None:
            await self.app(scope, receive, send)
            return
        handler, params = found
        request = Request(scope, receive)
        app: FastAPI = scope["app"]
        response: Any
        try:
            response = await handler(request, **params)
        except errors.HANDLED as exc:
            response = errors.respond(app, request, exc)
        await response(scope, receive, send)
