"""``create_app`` for the intake service (FastAPI; no module-level app).

``POST /v1/reports`` takes an agent's :class:`~edgeloop_agent.contracts.ReportBatch`
with the node's bearer token: unknown token -> 401, a report for another node
-> 403, body over the limit -> 413, malformed -> 422 naming the field; a report
whose key was seen before answers 200 and changes nothing. ``GET /v1/fleet``
is the fleet-status view the rollout controller reads; ``GET /v1/cohorts``
the per-site view (window summaries of a site's nodes merged).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from edgeloop.core.settings import PlatformSettings
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop.monitor.intake.views import NodeView
from edgeloop_agent.contracts import ReportBatch


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(settings: PlatformSettings, store: IntakeStore | None = None) -> FastAPI:
    """Build the intake app around a store (built from settings when not given)."""
    store = store or IntakeStore.from_settings(settings)
    limit = settings.intake.max_body_bytes
    app = FastAPI(
        title="edgeloop intake", description="Agent reports in; fleet status out."
    )
    app.state.store = store

    @app.post("/v1/reports", responses={401: {}, 403: {}, 413: {}, 422: {}})
    async def post_reports(request: Request) -> JSONResponse:
        """Accept a batch of reports from one node."""
        auth = request.headers.get("authorization", "")
        node = store.node_for(auth[7:]) if auth.lower().startswith("bearer ") else None
        if node is None:
            return _error(401, "unknown or missing bearer token")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _error(413, f"body: {declared} bytes exceeds the limit of {limit}")
        body = await request.body()
        if len(body) > limit:
            return _error(413, f"body: {len(body)} bytes exceeds the limit of {limit}")
        try:
            batch = ReportBatch.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            return _error(422, f"{where}: {first['msg']}")
        foreign = next((r for r in batch.reports if r.node != node), None)
        if foreign is not None:
            return _error(
                403,
                f"report {foreign.key} is for node '{foreign.node}', token is for '{node}'",
            )
        accepted, duplicates = store.accept(list(batch.reports))
        return JSONResponse({"accepted": accepted, "duplicates": duplicates})

    @app.get("/v1/fleet")
    def fleet() -> list[NodeView]:
        """Per node: active version, health, last seen, error rate, drift, quality flags."""
        return store.fleet()

    @app.get("/v1/cohorts")
    def cohorts() -> list[dict[str, Any]]:
        """Per site: nodes, versions, health, quality flags and drift windows merged per version."""
        return store.cohorts()

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        """Liveness."""
        return {"ok": True}

    return app
