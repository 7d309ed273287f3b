"""Request-body limits on the bytes actually received (pure ASGI, stdlib only).

Both HTTP services (the agent and the intake) wrap their app in
:class:`BodyLimit`. Checking ``Content-Length`` alone is not enough: a chunked
upload declares no length, and the framework would buffer all of it before any
handler could look (64 MiB pushed the agent from 120 to 225 MiB). Here the
``receive`` channel counts bytes as they arrive and stops the request at the
limit, so memory stays at most one limit plus one chunk per request.
Compressed bodies are refused (415): neither service decompresses, so nothing
can inflate past the limit behind its back. A body that stops arriving for
``body_timeout_s`` gets 408, and :func:`guarded_http_protocol` closes
connections that never finish their headers (slow-loris).

Lives with the contracts because the platform's intake uses it too and may
import only the agent's contracts.
"""

from __future__ import annotations

import asyncio
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


class _TooSlow(Exception):
    """Raised inside ``receive`` when the next body chunk does not come in time."""


class BodyLimit:
    """Answer 413 once a request body passes ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int, body_timeout_s: float = 30.0) -> None:
        self.app = app
        self.limit = limit
        self.body_timeout_s = body_timeout_s

    async def _drain(self, receive: Receive, seen: int) -> None:
        await _discard(self.limit, self.body_timeout_s, receive, seen)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse early when the headers tell, else count while the body streams."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"", b"identity"):
            await reply(
                send,
                415,
                f"content-encoding {encoding.decode(errors='replace')!r} "
                "is not accepted; send the body uncompressed",
            )
            return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            # read (and drop) a body up to twice the limit first: a client still
            # sending would otherwise see a reset, not the 413 telling it why
            if int(length) <= 2 * self.limit:
                await self._drain(receive, 0)
            await reply(
                send,
                413,
                f"body: {int(length)} bytes exceeds the limit of {self.limit}",
            )
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive_within(receive, self.body_timeout_s)
            if message is None:
                raise _TooSlow
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
            if received <= 2 * self.limit:
                await self._drain(receive, received)
            if not started:
                await reply(
                    send,
                    413,
                    f"body: more than {self.limit} bytes (the limit) received",
                )
        except _TooSlow:
            if not started:
                await reply(
                    send,
                    408,
                    f"body: no data for {self.body_timeout_s:g} s; request timed out",
                )


async def receive_within(receive: Receive, timeout_s: float) -> Message | None:
    """The next message, or None when it does not come within ``timeout_s``.

    What ``asyncio.timeout`` does, for the one await of every request that
    needs it, at a fraction of its cost (a timer handle and a flag; measured
    at ~5 % of a one-row scoring request): the task is cancelled when the
    timer fires, and that cancellation, and only it, becomes None.
    """
    task = asyncio.current_task()
    assert task is not None
    fired = False

    def expire() -> None:
        nonlocal fired
        fired = True
        task.cancel()

    timer = asyncio.get_running_loop().call_later(timeout_s, expire)
    try:
        return await receive()
    except asyncio.CancelledError:
        if fired and task.uncancel() == 0:
            return None
        raise
    finally:
        timer.cancel()


async def _discard(limit: int, timeout_s: float, receive: Receive, seen: int) -> None:
    """Read and drop body chunks until the end, twice the limit, or a stall."""
    while seen <= 2 * limit:
        try:
            async with asyncio.timeout(timeout_s):
                message = await receive()
        except TimeoutError:
            return
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def reply(send: Send, status: int, message: str) -> None:
    """Answer ``{"error": message}`` with ``status`` and close the connection."""
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


def guarded_http_protocol(header_timeout_s: float) -> type:
    """Uvicorn's HTTP protocol with a deadline for each request's headers.

    uvicorn times out idle keep-alive connections, but not a client that
    connects and then sends its headers a byte at a time (slow-loris: 300
    half-open connections were held for 50 s). This closes a connection whose
    next request has not finished its headers ``header_timeout_s`` after the
    connection opened or the previous response completed. Pass the result as
    ``uvicorn.run(..., http=...)``; uvicorn is imported here, on use only.
    """
    base: Any
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol
    except ImportError:  # httptools missing: the pure-Python parser
        from uvicorn.protocols.http.h11_impl import H11Protocol

        base = H11Protocol

    class HeaderDeadlineProtocol(base):  # type: ignore[misc]
        """Closes connections that do not finish a request's headers in time."""

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._served = 0
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._served += 1
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            deadline = getattr(self, "_deadline", None)
            if deadline is not None:
                deadline.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            deadline = getattr(self, "_deadline", None)
            if deadline is not None:
                deadline.cancel()
            self._deadline = self.loop.call_later(
                header_timeout_s, self._expire, self._served
            )

        def _expire(self, served: int) -> None:
            waiting = self.cycle is None or self.cycle.response_complete
            if served == self._served and waiting and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineProtocol
