"""``GET /healthz`` for the loop service's probes and ``GET /metrics``, served from a thread.

The service itself has no HTTP API; its ticks may run a local training for
many minutes. A thread answering the probe keeps a long tick from getting the
pod killed, while a dead process still fails it.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STARTED = time.time()
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def serve_health(port: int, service: Any, host: str = "0.0.0.0") -> ThreadingHTTPServer:  # noqa: S104 - a pod's probe port
    """Start the probe server in a daemon thread; returns it (``shutdown()`` stops it)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/metrics":
                self._answer(service.metrics.render(), CONTENT_TYPE)
                return
            if self.path != "/healthz":
                self.send_error(404, "only /healthz and /metrics here")
                return
            body = json.dumps(
                {
                    "ok": True,
                    "holder": service.lock.holder,
                    "up_s": round(time.time() - STARTED),
                }
            ).encode()
            self._answer(body, "application/json")

        def _answer(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Probes every few seconds are not worth a log line."""

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
