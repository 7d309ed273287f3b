"""``create_app``: the agent's FastAPI application, every dependency injectable.

No module-level app. The lifespan restores the cached model (so a restart with
no network serves at once), then runs the desired-model watcher, the outbox
forwarder, the window/heartbeat ticker and, when enabled, the MQTT bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from edgeloop_agent import __version__
from edgeloop_agent.api import errors, routes
from edgeloop_agent.api.fast_path import AgentApp, FastScoring
from edgeloop_agent.contracts import BundleError
from edgeloop_agent.contracts.asgi_limits import BodyLimit
from edgeloop_agent.contracts.openapi import with_bodies
from edgeloop_agent.lifecycle import Lifecycle
from edgeloop_agent.metrics import Metrics
from edgeloop_agent.outbox.forwarder import Forwarder
from edgeloop_agent.outbox.store import Outbox
from edgeloop_agent.scoring.model_store import ModelStore
from edgeloop_agent.service import ScoringService
from edgeloop_agent.settings import AgentSettings

log = logging.getLogger(__name__)


def create_app(
    settings: AgentSettings,
    *,
    service: ScoringService | None = None,
    store: ModelStore | None = None,
    outbox: Outbox | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    background: bool = True,
    fast_path: bool = True,
) -> AgentApp:
    """Build the agent app.

    Args:
        settings: the agent's settings.
        service: a prepared scoring service (tests); built from settings otherwise.
        store: bundle cache; built from settings otherwise.
        outbox: report queue; built from settings otherwise.
        transport: httpx transport for the forwarder (tests use MockTransport).
        background: run the watcher/forwarder/ticker/MQTT tasks in the lifespan.
        fast_path: scoring requests skip FastAPI's routing (off: to compare).

    Long: the app factory wires settings, store, lifecycle, outbox, MQTT and routes in start-up order.
    """
    metrics = service.metrics if service else Metrics()
    outbox = outbox if outbox is not None else (service.outbox if service else None)
    if outbox is None:
        outbox = Outbox(
            settings.outbox.path,
            settings.node.id,
            settings.outbox.max_reports,
            settings.outbox.max_bytes,
            settings.outbox.max_report_bytes,
            settings.outbox.max_dead_letters,
        )
    forwarder = Forwarder(outbox, settings.outbox, transport, settings.node.id)
    service = service or ScoringService(
        settings, metrics, outbox, on_report=forwarder.wake
    )
    store = store or ModelStore(
        settings.model.cache_dir,
        threads=settings.scoring.threads,
        timeout_s=settings.model.download_timeout_s,
        smoke_tolerance=settings.model.smoke_tolerance,
        plain_http_registries=settings.model.plain_http_registries,
        registry_mirror=settings.model.registry_mirror,
        max_bundle_bytes=settings.model.max_bundle_bytes,
        deadline_s=settings.model.download_deadline_s,
        redirect_hosts=settings.model.redirect_hosts,
    )
    lifecycle = Lifecycle(settings.model, store, service, node=settings.node.id)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await _activate_initial(settings, store, service, lifecycle)
        tasks: list[asyncio.Task[None]] = []
        bridge = None
        if background:
            if not settings.model.bundle:
                tasks.append(asyncio.create_task(lifecycle.run(), name="desired-model"))
            tasks.append(asyncio.create_task(forwarder.run(), name="forwarder"))
            tasks.append(asyncio.create_task(_ticker(service), name="ticker"))
            if settings.mqtt.enabled:
                from edgeloop_agent.mqtt import MqttBridge

                bridge = MqttBridge(settings, service)
                bridge.start()
        try:
            yield
        finally:
            if bridge is not None:
                bridge.stop()
            for task in tasks:
                task.cancel()
            if tasks:
                _, stuck = await asyncio.wait(tasks, timeout=10)
                for task in stuck:
                    log.error(
                        "background task %s did not stop within 10 s", task.get_name()
                    )
            service.close()
            if background:  # a last, bounded delivery; the rest waits in the outbox
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(settings.outbox.shutdown_drain_s):
                        await forwarder.drain()

    app = AgentApp(
        title="edgeloop agent",
        version=__version__,
        description="Offline-first ONNX scorer for one edge node (Open Inference Protocol v2 + raw readings).",
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry asks the global providers on every
        # request (~15 % of a one-row request); the agent reports by Prometheus
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.service = service
    app.state.metrics = metrics
    app.state.lifecycle = lifecycle
    app.state.forwarder = forwarder
    app.include_router(routes.router)
    app.openapi = with_bodies(app.openapi, routes.BODIES)  # type: ignore[method-assign]
    errors.install(app)
    if fast_path:
        app.quick = True  # plain infer requests, before the middleware
        app.add_middleware(FastScoring)  # inside BodyLimit (added after)
    app.add_middleware(
        BodyLimit,
        limit=settings.scoring.max_body_bytes,
        body_timeout_s=settings.server.body_timeout_s,
    )
    return app


async def _activate_initial(
    settings: AgentSettings,
    store: ModelStore,
    service: ScoringService,
    lifecycle: Lifecycle,
) -> None:
    if service.active is not None:
        return
    if settings.model.bundle:
        try:
            service.swap(
                await asyncio.to_thread(store.standalone, settings.model.bundle)
            )
        except BundleError as exc:
            service.record_failure(exc.message)
        return
    if await asyncio.to_thread(lifecycle.restore):
        log.info("restored the cached active model from %s", settings.model.cache_dir)
    await lifecycle.step()


async def _ticker(service: ScoringService) -> None:
    while True:
        await asyncio.to_thread(service.tick)
        await asyncio.sleep(1.0)
