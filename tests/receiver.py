"""A small intake stand-in for agent tests: records reports, deduplicates by key.

Until the platform's intake exists, this is the receiving side of the wire
contract (``edgeloop_agent.contracts.ReportBatch``).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from edgeloop_agent.contracts import ReportBatch


@dataclass
class Received:
    reports: dict[str, dict] = field(default_factory=dict)
    deliveries: int = 0
    duplicates: int = 0
    auth: set[str] = field(default_factory=set)
    fail_with: int | None = None
    poison_marker: str = ""
    """Answer HTTP 500 to any batch holding a report whose key contains this
    (an intake that crashes on one report)."""
    delay_s: float = 0.0
    """Answer this long after recording a batch (a window in which to kill the sender)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def kinds(self) -> dict[str, int]:
        with self.lock:
            out: dict[str, int] = {}
            for report in self.reports.values():
                out[report["body"]["kind"]] = out.get(report["body"]["kind"], 0) + 1
            return out


def receiver_app(state: Received) -> Starlette:
    async def reports(request: Request) -> JSONResponse:
        if state.fail_with:
            return JSONResponse({"error": "down"}, status_code=state.fail_with)
        state.auth.add(request.headers.get("authorization", ""))
        batch = ReportBatch.model_validate_json(await request.body())
        if state.poison_marker and any(
            state.poison_marker in r.key for r in batch.reports
        ):
            return JSONResponse({"error": "internal"}, status_code=500)
        with state.lock:
            state.deliveries += 1
            for report in batch.reports:
                if report.key in state.reports:
                    state.duplicates += 1
                else:
                    state.reports[report.key] = report.model_dump(mode="json")
        if state.delay_s:
            await asyncio.sleep(state.delay_s)
        return JSONResponse({"accepted": len(batch.reports)})

    return Starlette(routes=[Route("/v1/reports", reports, methods=["POST"])])
