"""Scoring requests straight to their handlers, without FastAPI's routing.

Profiled on one core, FastAPI routing and dependency resolution were ~35 % of
a single-row request and the model ~7 %. Two shortcuts, both answering
exactly as the routed stack does (``tests/integration/test_agent_fast_path.py``
sends the same battery to a fast and a routed agent):

* :class:`AgentApp` answers a plain JSON infer request (one FP32 tensor of
  numbers, see :mod:`edgeloop_agent.api.quick_infer`) before any middleware
  (and, as ``edgeloop-agent serve`` runs it, before ASGI at all: see
  :mod:`edgeloop_agent.api.quick_protocol`; both through :meth:`AgentApp.answer_plain`):
  body read once, orjson in and out, no Starlette request or response. It
  keeps the body limit's rules (declared length within the limit, the body
  in time, nothing compressed) and hands anything else to the full stack
  with the body replayed as it arrived.
* :class:`FastScoring`, inside the body limit, matches the three scoring
  paths itself and calls the same handler functions for everything else
  (``/predict``, binary tensors, requests with outputs or parameters).

The routes stay registered, so the OpenAPI document and every other path are
unchanged; errors get the same JSON answers through
:func:`edgeloop_agent.api.errors.respond`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgeloop_agent.api import errors, quick_infer, routes
from edgeloop_agent.api.binary import HEADER
from edgeloop_agent.contracts.asgi_limits import receive_within, reply

Handler = Callable[..., Awaitable[Response]]

_BINARY = HEADER.lower().encode()
_JSON = (b"content-type", b"application/json")
_NOT_PLAIN = frozenset((_BINARY, b"content-encoding", b"transfer-encoding"))
"""Headers that send a request down the full stack (binary tensors, compressed or chunked bodies)."""


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


def _scoring(scope: Scope) -> tuple[Handler, dict[str, str]] | None:
    if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
        return None
    return match(scope["path"])


class FastScoring:
    """ASGI middleware for ``POST /predict`` and ``POST …/infer``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a scoring request here; pass anything else on."""
        found = _scoring(scope)
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


Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
"""A whole HTTP answer: status, headers (without the server's own), body."""


class AgentApp(FastAPI):
    """The agent's FastAPI app, answering plain infer requests before its middleware."""

    quick = False
    """Set by :func:`edgeloop_agent.api.app.create_app` with the fast path on."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Try the quick path; everything it declines goes down the full stack."""
        if self.quick and scope["type"] == "http" and not scope.get("root_path"):
            params = self.plain_infer(scope["method"], scope["path"], scope["headers"])
            if params is not None:
                scope["app"] = self
                done, receive = await self._quick(scope, receive, send, params)
                if done:
                    return
        await super().__call__(scope, receive, send)

    def plain_infer(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]]
    ) -> dict[str, str] | None:
        """Path parameters of an infer request the body limit would let through as is.

        Only a request with a declared length within the limit, not compressed,
        not chunked and not binary, can be answered by :meth:`answer_plain`.
        """
        if method != "POST":
            return None
        found = match(path)
        if found is None or found[0] is routes.predict:
            return None
        length = None
        for name, value in headers:
            if name == b"content-length":
                length = value
            elif name in _NOT_PLAIN:
                return None
        limit = self.state.settings.scoring.max_body_bytes
        if length is None or not length.isdigit() or int(length) > limit:
            return None
        return found[1]

    def knows_model(self, params: dict[str, str]) -> bool:
        """Whether the infer path names a model being served (else a 404 before the body)."""
        try:
            routes.model_named(self, **params)
        except errors.HANDLED:
            return False
        return True

    def answer_plain(
        self, params: dict[str, str], path: str, body: bytes
    ) -> Answer | None:
        """The answer to a whole plain infer request, or None to route it.

        An unknown model or a request the service refuses gets the routed
        stack's JSON error (and is counted the same way).
        """
        try:
            model = routes.model_named(self, **params)
            answer = quick_infer.answer(self, model, body)
        except errors.HANDLED as exc:
            response = errors.respond_at(self, path, exc)
            return response.status_code, response.raw_headers, bytes(response.body)
        if answer is None:
            return None
        return 200, [(b"content-length", str(len(answer)).encode()), _JSON], answer

    async def _quick(
        self, scope: Scope, receive: Receive, send: Send, params: dict[str, str]
    ) -> tuple[bool, Receive]:
        """Answer here (True), or return a ``receive`` replaying what was read."""
        try:
            # the model first, as the routed handler looks it up before the body
            routes.model_named(self, **params)
        except errors.HANDLED as exc:
            await errors.respond_at(self, scope["path"], exc)(scope, receive, send)
            return True, receive
        timeout = self.state.settings.server.body_timeout_s
        message = await receive_within(receive, timeout)
        if message is None:
            await reply(
                send, 408, f"body: no data for {timeout:g} s; request timed out"
            )
            return True, receive
        if message["type"] != "http.request" or message.get("more_body", False):
            return False, _replay(message, receive)
        answer = self.answer_plain(params, scope["path"], message.get("body", b""))
        if answer is None:
            return False, _replay(message, receive)
        status, headers, body = answer
        await send(
            {"type": "http.response.start", "status": status, "headers": headers}
        )
        await send({"type": "http.response.body", "body": body})
        return True, receive


def _replay(first: Message, receive: Receive) -> Receive:
    """A ``receive`` that hands out ``first`` again, then defers to the channel."""
    pending = [first]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay
