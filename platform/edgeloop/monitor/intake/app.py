"""``create_app`` for the intake service (FastAPI; no module-level app).

``POST /v1/reports`` takes an agent's :class:`~edgeloop_agent.contracts.ReportBatch`
with the node's bearer token: unknown token -> 401, a report for another node
-> 403, body over the limit -> 413, malformed or timed outside the accepted
window -> 422 naming the field; a report whose key was seen before answers 200
and changes nothing; a report the store cannot take is listed in ``rejected``
and spares the rest of its batch; a store that is down -> 503 + Retry-After; a
POST whose client left while it waited its turn is dropped (499 in the
metrics; the agent delivers it again). ``GET /v1/fleet``
is the fleet-status view the rollout controller reads; ``GET /v1/cohorts``
the per-site view (window summaries of a site's nodes merged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import sqlalchemy.exc
from anyio import CapacityLimiter, to_thread
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from edgeloop.core.settings import PlatformSettings
from edgeloop.monitor.intake import metrics as intake_metrics
from edgeloop.monitor.intake.checks import out_of_window
from edgeloop.monitor.intake.quota import NodeQuota
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop.monitor.intake.tokens import Identity
from edgeloop.monitor.intake.views import NodeView
from edgeloop_agent.contracts import Report, ReportBatch
from edgeloop_agent.contracts.asgi_limits import BodyLimit
from edgeloop_agent.contracts.openapi import with_bodies

log = logging.getLogger(__name__)
_UNAVAILABLE = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)


class _Refused(Exception):
    """An auth failure raised from a dependency, answered as JSON."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _accept(
    store: IntakeStore, reports: list[Report]
) -> tuple[int, int, list[dict[str, str]]]:
    """Store a batch; if storing fails, store its reports one by one.

    A report the store cannot take (whatever the reason) is named in
    ``rejected`` and logged, and never costs the rest of the batch. An
    unreachable database is not a bad report: it propagates (HTTP 503).
    """
    try:
        accepted, duplicates = store.accept(reports)
        return accepted, duplicates, []
    except _UNAVAILABLE:
        raise
    except Exception as exc:  # noqa: BLE001 - isolate, then report per key below
        if len(reports) == 1:
            log.error("report %s not stored: %s", reports[0].key, exc)
            return 0, 0, [{"key": reports[0].key, "error": _reason(exc)}]
    accepted = duplicates = 0
    rejected: list[dict[str, str]] = []
    for report in reports:
        a, d, r = _accept(store, [report])
        accepted, duplicates, rejected = accepted + a, duplicates + d, rejected + r
    return accepted, duplicates, rejected


def _pin_and_accept(
    store: IntakeStore, identity: Identity, batch: list[Report]
) -> tuple[int, int, list[dict[str, str]]]:
    """The token's site and cohort pinned on each report, then the batch stored."""
    return _accept(store, store.pin_identity(identity, batch))


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0][:200] if text else ''}"


async def _prune_forever(store: IntakeStore, interval_s: float) -> None:
    """Apply retention now and then every ``interval_s``, off the event loop.

    A failed pass is logged and retried at the next interval: retention must
    never take the intake down.
    """
    while True:
        try:
            result = await run_in_threadpool(store.prune)
            if result.total() or result.compacted or result.expired:
                log.info(
                    "retention removed %d reports (%s); %d node-days of heartbeats "
                    "summarised; collected partitions: %d compacted, %d expired",
                    result.total(),
                    ", ".join(f"{k} {n}" for k, n in sorted(result.removed.items())),
                    result.heartbeat_days,
                    result.compacted,
                    result.expired,
                )
        except Exception as exc:  # noqa: BLE001 - logged, retried next interval
            log.warning("retention pass failed: %s", _reason(exc))
        await asyncio.sleep(interval_s)


def _retention_lifespan(store: IntakeStore, interval_s: float) -> Any:
    """The app's lifespan: a retention task while it serves (none when 0)."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if interval_s <= 0:
            yield
            return
        task = asyncio.create_task(_prune_forever(store, interval_s))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan


@dataclass
class _TokenGate:
    """One token's gate and how many of its POSTs hold or wait for it."""

    gate: asyncio.Semaphore
    users: int = 0


class Admission:
    """Report POSTs past this point: ``per_token`` per bearer token, ``limit`` in all.

    The rest wait here, not refused.

    Outermost of the app's own middleware, so a waiting POST has cost the
    event loop only its parsing: with 1,000 nodes posting together, each
    running the whole stack at once kept the loop busy ~100 ms at a stretch
    (``/healthz`` p99 64 ms); gated at 64, 6 ms, and the burst's own p99 is
    unchanged (the store's CPU bounds it either way). An agent posts one batch
    at a time, so a token with several POSTs open is a flood or a retry: keyed
    on the ``Authorization`` header (before any lookup), it queues behind its
    own POSTs instead of taking the store threads from the rest of the fleet.
    """

    def __init__(self, app: Any, limit: int, per_token: int) -> None:
        self.app = app
        self.gate = asyncio.Semaphore(limit)
        self.per_token = per_token
        # per token: its gate and how many POSTs hold or wait for it, dropped
        # at 0 so tokens that come and go (or junk headers) leave nothing behind
        self.token_gates: dict[str, _TokenGate] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """A report POST waits at its token's gate, then the shared one; the rest pass."""
        if not (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == "/v1/reports"
        ):
            await self.app(scope, receive, send)
            return
        token = next(
            (v for k, v in scope["headers"] if k.lower() == b"authorization"), b""
        ).decode("latin-1")
        entry = self.token_gates.get(token)
        if entry is None:
            entry = self.token_gates[token] = _TokenGate(
                asyncio.Semaphore(self.per_token)
            )
        entry.users += 1
        try:
            async with entry.gate, self.gate:
                await self.app(scope, receive, send)
        finally:
            entry.users -= 1
            if not entry.users:
                del self.token_gates[token]


def create_app(settings: PlatformSettings, store: IntakeStore | None = None) -> FastAPI:
    """Build the intake app around a store (built from settings when not given)."""
    store = store or IntakeStore.from_settings(settings)
    limit = settings.intake.max_body_bytes
    docs = settings.intake.api_docs
    app = FastAPI(
        lifespan=_retention_lifespan(store, settings.intake.retention.interval_s),
        title="edgeloop intake",
        description="Agent reports in; fleet status out.",
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        # FastAPI's native OpenTelemetry asks the global providers on every
        # request; the intake reports by Prometheus
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.store = store
    quota = NodeQuota(
        settings.intake.quota_reports_per_s,
        settings.intake.quota_bytes_per_s,
        settings.intake.quota_burst_s,
    )
    app.add_middleware(
        BodyLimit, limit=limit, body_timeout_s=settings.intake.body_timeout_s
    )
    app.add_middleware(
        Admission,
        limit=settings.intake.max_posts_in_flight,
        per_token=settings.intake.max_posts_in_flight_per_token,
    )
    # a POST's store work on a few threads, not the threadpool's 40: each
    # thread wants the GIL between its database round trips and the event
    # loop waits behind all of them (measurements: ``intake.store_threads``)
    store_threads = CapacityLimiter(settings.intake.store_threads)
    registry = intake_metrics.registry_for(store.engine, settings.intake.silent_after_s)
    ingest = intake_metrics.IngestMetrics(registry)
    store.on_version_change = ingest.version_changed
    store.on_stored = ingest.stored

    @app.post(
        "/v1/reports",
        responses={401: {}, 403: {}, 413: {}, 422: {}, 429: {}, 503: {}},
    )
    async def post_reports(request: Request) -> JSONResponse:
        """Accept a batch of reports from one node."""
        response = await _post_reports(request)
        ingest.answered(response.status_code)
        return response

    async def _post_reports(request: Request) -> JSONResponse:
        auth = request.headers.get("authorization", "")
        # Database work runs in the threadpool, never on the event loop: one
        # slow commit must not stall every other node's POST and /healthz.
        identity = (
            await to_thread.run_sync(
                store.identity_for, auth[7:], limiter=store_threads
            )
            if auth.lower().startswith("bearer ")
            else None
        )
        if identity is None:
            return _error(401, "unknown or missing bearer token")
        if identity.role != "node":
            return _error(
                403, f"'{identity.node}' holds a reader token: it cannot post reports"
            )
        node = identity.node
        try:
            body = await request.body()  # BodyLimit stops it at the limit
        except ClientDisconnect:
            # gone while its POST waited its turn (an agent past its timeout):
            # nothing stored, nobody to answer; the agent delivers it again
            log.info("node %s closed its connection before its POST's turn", node)
            return _error(499, "client closed the connection")
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
        # idempotency keys are per node: a key is namespaced by its node, so one
        # node cannot pre-empt (and so suppress) another node's reports
        alien = next(
            (r for r in batch.reports if not r.key.startswith(f"{node}:")), None
        )
        if alien is not None:
            return _error(
                422, f"report key {alien.key!r} must start with the node name '{node}:'"
            )
        wait = quota.take(node, len(batch.reports), len(body))
        if wait is not None:
            return JSONResponse(
                {
                    "error": f"node '{node}' is over its report budget; retry in {wait:g} s"
                },
                status_code=429,
                headers={"Retry-After": f"{wait:g}"},
            )
        problem = out_of_window(
            list(batch.reports),
            datetime.now(UTC),
            timedelta(days=settings.intake.max_report_age_days),
            timedelta(seconds=settings.intake.max_clock_skew_s),
        )
        if problem:
            return _error(422, problem)
        try:
            accepted, duplicates, rejected = await to_thread.run_sync(
                _pin_and_accept,
                store,
                identity,
                list(batch.reports),
                limiter=store_threads,
            )
        except _UNAVAILABLE as exc:
            log.error("report store unavailable: %s", exc.__class__.__name__)
            return JSONResponse(
                {"error": "report store unavailable; retry later"},
                status_code=503,
                headers={"Retry-After": "10"},
            )
        ingest.answered_batch(list(batch.reports), duplicates, len(rejected))
        return JSONResponse(
            {"accepted": accepted, "duplicates": duplicates, "rejected": rejected}
        )

    def reader(request: Request) -> None:
        """Reads need a reader token unless ``intake.open_reads``."""
        if settings.intake.open_reads:
            return
        auth = request.headers.get("authorization", "")
        who = (
            store.identity_for(auth[7:]) if auth.lower().startswith("bearer ") else None
        )
        if who is None:
            raise _Refused(401, "reading the fleet needs a reader token")
        if who.role != "reader":
            raise _Refused(403, f"token of '{who.node}' is not a reader token")

    @app.exception_handler(_Refused)
    async def refused(request: Request, exc: _Refused) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.get("/v1/fleet", dependencies=[Depends(reader)], responses={401: {}, 403: {}})
    def fleet() -> list[NodeView]:
        """Per node: active version, health, last seen, error rate, drift, quality flags."""
        return store.fleet()

    @app.get(
        "/v1/cohorts", dependencies=[Depends(reader)], responses={401: {}, 403: {}}
    )
    def cohorts() -> list[dict[str, Any]]:
        """Per site: nodes, versions, health, quality flags and drift windows merged per version."""
        return store.cohorts()

    @app.get(
        "/v1/drift",
        dependencies=[Depends(reader)],
        responses={401: {}, 403: {}, 422: {}},
    )
    def drift(
        version: Annotated[str, Query(min_length=1, max_length=64)],
    ) -> dict[str, Any]:
        """Per node, the drifted share of its latest window on a model version (the rollout drift gate's baseline)."""
        return {"version": version, "nodes": store.drift_by_node(version)}

    @app.get(
        "/v1/alarms",
        dependencies=[Depends(reader)],
        responses={401: {}, 403: {}, 422: {}},
    )
    def alarms(
        node: Annotated[str, Query(max_length=253)] = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> list[dict[str, Any]]:
        """The newest windows that alarmed, per node, with the sensors named behind the alarms."""
        return store.recent_alarms(node, limit)

    app.openapi = with_bodies(  # type: ignore[method-assign]
        app.openapi, {("post", "/v1/reports"): ReportBatch}
    )

    def scraper(request: Request) -> None:
        """``/metrics`` is open unless ``intake.open_metrics`` is off."""
        if not settings.intake.open_metrics:
            reader(request)

    @app.get(
        "/metrics",
        dependencies=[Depends(scraper)],
        responses={401: {}, 403: {}},
        response_class=Response,
    )
    def metrics() -> Response:
        """Prometheus metrics: fleet gauges (read now), ingest counters, process."""
        return Response(
            intake_metrics.render(registry), media_type=intake_metrics.CONTENT_TYPE
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        """Liveness, answered on the event loop.

        A ``def`` waited in the threadpool's queue behind every POST's store
        work: p99 1.9 s while 1,000 nodes onboarded.
        """
        return {"ok": True}

    return app
