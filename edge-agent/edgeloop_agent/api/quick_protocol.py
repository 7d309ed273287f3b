"""Plain infer requests answered inside uvicorn's HTTP protocol, without an ASGI round trip.

Measured on one core, a single-row request through the ASGI quick path
(:class:`edgeloop_agent.api.fast_path.AgentApp`) spent ~40 µs of its ~130 µs in
the ASGI machinery around it: uvicorn's per-request task, scope, ``receive``
and ``send`` messages, the body deadline's timer. A plain infer request needs
none of it: the protocol reads the body as it is parsed, scores it with
:meth:`AgentApp.answer_plain` (the same answer, errors and metrics) and writes
the response with the server's own headers, as uvicorn would have.

A body that does not arrive in the read that completed the headers is waited
for with the body deadline (``server.body_timeout_s`` between reads, the same
408 as the ASGI path's when it passes). Everything else takes uvicorn's usual
path, unchanged: other methods and paths, HTTP/1.0 or ``Connection: close``,
``Expect: 100-continue``, a pipelined request behind one still running, a
connection whose writes are paused, the concurrency limit reached, and
any request :meth:`AgentApp.answer_plain` declines (handed
over with its body). Needs uvicorn's httptools protocol (``uvicorn[standard]``,
the ``edge`` extra); without httptools the agent serves through ASGI only.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from edgeloop_agent.api.fast_path import AgentApp
from edgeloop_agent.contracts.asgi_limits import guarded_http_protocol

log = logging.getLogger(__name__)


class _Pending:
    """A plain infer request whose body is being read."""

    __slots__ = ("params", "path", "chunks", "timer")

    def __init__(self, params: dict[str, str], path: str) -> None:
        self.params = params
        self.path = path
        self.chunks: list[bytes] = []
        self.timer: asyncio.TimerHandle | None = None

    def stop_waiting(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def agent_http_protocol(
    app: AgentApp,
    header_timeout_s: float,
    body_timeout_s: float,
    access_log: bool = False,
) -> type:
    """The agent's uvicorn protocol: header deadlines, plus plain infer answered in place.

    Pass as ``uvicorn.run(app, http=..., access_log=access_log)``. With the
    access log on (every request logged by uvicorn), without httptools, or
    with the app's fast path off, it is :func:`guarded_http_protocol`'s class.
    """
    base: Any = guarded_http_protocol(header_timeout_s)
    try:
        from uvicorn.protocols.http.httptools_impl import (
            STATUS_LINE,
            HttpToolsProtocol,
        )
    except ImportError:  # pragma: no cover - the edge extra installs httptools
        return base  # type: ignore[no-any-return]
    if access_log or not app.quick or not issubclass(base, HttpToolsProtocol):
        return base  # type: ignore[no-any-return]

    class QuickInferProtocol(base):  # type: ignore[misc]
        """Answers whole plain infer requests as they are parsed."""

        _pending: _Pending | None = None

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            pending = self._pending
            if pending is not None:  # the body goes on in a later read
                if self.transport.is_closing():
                    self._drop()
                    return
                pending.stop_waiting()
                pending.timer = self.loop.call_later(body_timeout_s, self._body_late)

        def connection_lost(self, exc: Exception | None) -> None:
            self._drop()
            super().connection_lost(exc)

        def shutdown(self) -> None:
            pending = self._drop()
            if pending is not None:  # let it finish as uvicorn lets its own
                self._hand_over(pending, complete=False)
            super().shutdown()

        def _expire(self, served: int) -> None:
            if self._pending is None:  # a body being read is not late headers
                super()._expire(served)

        def _drop(self) -> _Pending | None:
            pending, self._pending = self._pending, None
            if pending is not None:
                pending.stop_waiting()
            return pending

        def _body_late(self) -> None:
            """No more of the body within the deadline: the ASGI path's 408."""
            if self._drop() is None or self.transport.is_closing():
                return
            message = f"body: no data for {body_timeout_s:g} s; request timed out"
            body = json.dumps({"error": message}).encode()
            self._write(
                408,
                [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
                body,
                close=True,
            )

        def on_headers_complete(self) -> None:
            try:
                pending = self._plain()
            except Exception:  # a bug here must not become httptools' 400
                log.debug("quick infer check failed; uvicorn's path", exc_info=True)
                pending = None
            if pending is None:
                super().on_headers_complete()
            self._pending = pending

        def on_body(self, body: bytes) -> None:
            if self._pending is None:
                super().on_body(body)
            else:
                self._pending.chunks.append(body)

        def on_message_complete(self) -> None:
            pending = self._drop()
            if pending is None:
                super().on_message_complete()
                return
            try:
                answer = app.answer_plain(
                    pending.params, pending.path, b"".join(pending.chunks)
                )
            except Exception:  # a bug: uvicorn's path answers (and logs) it
                log.debug("quick infer failed; handing over", exc_info=True)
                answer = None
            if answer is None:
                self._hand_over(pending, complete=True)
                return
            self._write(*answer)

        def _write(
            self,
            status: int,
            headers: list[tuple[bytes, bytes]],
            body: bytes,
            close: bool = False,
        ) -> None:
            """The response as uvicorn writes an ASGI app's: its headers first."""
            out = [STATUS_LINE[status]]
            for name, value in self.server_state.default_headers:
                out += [name, b": ", value, b"\r\n"]
            for name, value in headers:
                out += [name, b": ", value, b"\r\n"]
            if close:
                out.append(b"connection: close\r\n")
            out += [b"\r\n", body]
            self.transport.write(b"".join(out))
            if close:
                self.transport.close()
            self.on_response_complete()

        def _plain(self) -> _Pending | None:
            """The request as a plain infer request to read here, or None."""
            if self.expect_100_continue or self.root_path or self.flow.write_paused:
                return None
            if self.cycle is not None and not self.cycle.response_complete:
                return None  # pipelined behind a running request: keep the order
            limit = self.limit_concurrency
            if limit is not None and (
                len(self.connections) >= limit or len(self.tasks) >= limit
            ):
                return None  # uvicorn answers 503
            parser = self.parser
            if (
                parser.get_method() != b"POST"
                or parser.get_http_version() != "1.1"
                or not parser.should_keep_alive()
                or parser.should_upgrade()
            ):
                return None
            url = self.url
            if not url.startswith(b"/") or b"?" in url or b"%" in url:
                return None
            try:
                path = url.decode("ascii")
            except UnicodeDecodeError:
                return None
            params = app.plain_infer("POST", path, self.headers)
            if params is None or not app.knows_model(params):
                return None  # an unknown model: uvicorn's path answers 404 at once
            return _Pending(params, path)

        def _hand_over(self, pending: _Pending, complete: bool) -> None:
            """Start uvicorn's own handling of the request with what was read."""
            super().on_headers_complete()
            for chunk in pending.chunks:
                super().on_body(chunk)
            if complete:
                super().on_message_complete()

    return QuickInferProtocol
