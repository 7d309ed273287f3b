"""Real servers on 127.0.0.1 for tests: a static file server (with Range) in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles


@contextmanager
def serve_app(
    app,
    port: int,
    lifespan: str = "auto",
    http="auto",
    access_log: bool = True,
    handle: list | None = None,
) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a thread; ``http`` is uvicorn's protocol.

    ``handle``, when given, receives the ``uvicorn.Server`` (to stop it early).
    """
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan=lifespan,
        http=http,
        access_log=access_log,
    )
    server = uvicorn.Server(config)
    if handle is not None:
        handle.append(server)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def file_server(root: Path, port: int) -> Iterator[tuple[str, list[str]]]:
    """Serve ``root``; yields (base URL, list of Range headers seen)."""
    ranges: list[str] = []
    static = Starlette(routes=[Mount("/", app=StaticFiles(directory=root))])

    async def app(scope, receive, send):
        if scope["type"] == "http":
            ranges.append(Request(scope).headers.get("range", ""))
        await static(scope, receive, send)

    with serve_app(app, port) as url:
        yield url, ranges
