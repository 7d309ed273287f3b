"""Request-body limits on the bytes actually received (pure ASGI, stdlib only).

Both HTTP services (the agent and the intake) wrap their app in
:class:`BodyLimit`. Checking ``Content-Length`` alone is not enough: a chunked
upload declares no length, and the framework would buffer all of it before any
handler could look (64 MiB pushed the agent from 120 to 225 MiB). Here the
``receive`` channel counts bytes as they arrive and stops the request at the
limit, so memory stays at most one limit plus one chunk per request.
Compressed bodies are refused (415): neither service decompresses, so nothing
can inflate past the limit behind its back.

Lives with the contracts because the platform's intake uses it too and may
import only the agent's contracts.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _TooLarge(Exception):
    """Raised inside ``receive`` once the body passes the limit."""


class BodyLimit:
    """Answer 413 once a request body passes ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse early when the headers tell, else count while the body streams."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"", b"identity"):
            await _reply(
                send,
                415,
                f"content-encoding {encoding.decode(errors='replace')!r} "
                "is not accepted; send the body uncompressed",
            )
            return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _reply(
                send,
                413,
                f"body: {int(length)} bytes exceeds the limit of {self.limit}",
            )
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await _reply(
                    send,
                    413,
                    f"body: more than {self.limit} bytes (the limit) received",
                )


async def _reply(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
