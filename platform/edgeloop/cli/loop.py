"""``edgeloop loop``: the loop service (triggers -> retraining -> gates) and its runs."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from edgeloop.cli.output import emit, state, stderr

if TYPE_CHECKING:
    from edgeloop.core.settings import PlatformSettings
    from edgeloop.loop.service import LoopService

app = typer.Typer(
    help="The loop service: evaluate triggers, retrain, follow runs.",
    no_args_is_help=True,
)


def build_service(settings: PlatformSettings) -> LoopService:
    """The service as configured: the intake's database, the policy file, KFP or local."""
    from edgeloop.cli.triggers import load_policy, trigger_engine
    from edgeloop.loop.backends import Backend, KfpBackend, LocalBackend
    from edgeloop.loop.service import LoopService
    from edgeloop.monitor.intake.store import IntakeStore
    from edgeloop.triggers.engine import TriggerEngine

    policy_file = settings.loop.policy_file
    policy = load_policy(Path(policy_file) if policy_file else None)
    store = IntakeStore.from_settings(settings)

    def engine() -> TriggerEngine:
        # fresh each tick: `edgeloop retrain` may have recorded a request since
        return trigger_engine(settings, store, policy)

    console = stderr()
    backend: Backend = (
        KfpBackend(settings)
        if settings.pipeline.kfp_host
        else LocalBackend(
            settings,
            lambda task, status: (
                console.print(f"  {task}: {status}") if status != "started" else None
            ),
        )
    )
    holder = settings.loop.holder or f"{socket.gethostname()}-{os.getpid()}"
    return LoopService(
        settings,
        engine,
        backend,
        store.engine,
        holder,
        lock=leader_lock(settings, store.engine, holder),
    )


def leader_lock(settings: PlatformSettings, engine: Any, holder: str) -> Any:
    """The Lease in a pod (or when asked), else the database lock row."""
    from edgeloop.loop import k8s_lease
    from edgeloop.loop.lease import LeaderLock

    mode = settings.loop.lease
    if mode == "database" or (mode == "auto" and not k8s_lease.in_pod()):
        return LeaderLock(engine, holder, ttl_s=settings.loop.lease_ttl_s)
    return k8s_lease.from_cluster(
        settings.loop.lease_namespace, holder, settings.loop.lease_ttl_s
    )


@app.command()
def run(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="One tick, then exit."),
    interval: float | None = typer.Option(
        None, "--interval", min=0.1, help="Seconds between ticks (loop.interval_s)."
    ),
    health_port: int = typer.Option(
        0,
        "--health-port",
        min=0,
        max=65535,
        help="Serve GET /healthz on this port (the chart's probes); 0: off.",
    ),
) -> None:
    """Run the loop service: every interval, lead or wait, follow the run, evaluate, retrain.

    SIGTERM (a pod stopping) finishes the current tick, gives up the lease and exits 0.
    """
    from edgeloop.core.settings import load_settings

    settings = load_settings()
    service = build_service(settings)
    every = interval or settings.loop.interval_s
    console = stderr()
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    from edgeloop.loop.keepalive import LeaseKeepalive

    keepalive = LeaseKeepalive(service.lock, settings.loop.lease_ttl_s).start()
    if health_port:
        from edgeloop.loop.health import serve_health

        serve_health(health_port, service)
    where = settings.pipeline.kfp_host or "kfp.local on this machine"
    if not state(ctx).quiet:
        console.print(
            f"loop service {service.lock.holder}: every {every:g} s, runs on {where}"
        )
    try:
        while True:
            tick = service.tick()
            _show(ctx, tick)
            if once or stopping:
                break
            deadline = time.monotonic() + every
            while not stopping and time.monotonic() < deadline:
                time.sleep(min(0.5, every))
            if stopping:
                break
    except KeyboardInterrupt:
        pass
    finally:
        keepalive.stop()
        service.release()
    if once:
        emit(ctx, _tick_row(tick))


def _tick_row(tick: Any) -> dict[str, Any]:
    return {
        "leader": tick.leader,
        "fired": tick.fired,
        "started": tick.started,
        "followed": tick.followed,
        "finished": tick.finished,
        "errors": tick.errors,
    }


def _show(ctx: typer.Context, tick: Any) -> None:
    if state(ctx).quiet:
        return
    console = stderr()
    if not tick.leader:
        console.print("waiting: another replica holds the lease")
        return
    for line in tick.errors:
        console.print(f"error: {line}")
    if tick.fired:
        console.print(f"fired: {', '.join(tick.fired)}")
    if tick.started:
        console.print(f"started {tick.started}")
    for name, outcome in tick.finished.items():
        console.print(f"{name}: {outcome}")


@app.command()
def status(ctx: typer.Context) -> None:
    """Every retraining the loop service started: state, attempts, run id, outcome."""
    from edgeloop.core.settings import load_settings
    from edgeloop.loop.ledger import RunLedger
    from edgeloop.monitor.intake.store import IntakeStore

    settings = load_settings()
    store = IntakeStore.from_settings(settings)
    ledger = RunLedger(store.engine)
    leader = leader_lock(settings, store.engine, "").leader()
    rows = [
        {
            "run": r.run_name,
            "state": r.state,
            "attempts": r.attempts,
            "backend": r.backend,
            "run_id": r.run_id or "",
            "trigger": f"{r.trigger.get('kind', '')}: {r.trigger.get('reason', '')}",
            "coalesced": len(r.coalesced),
            "outcome": r.outcome.get("error")
            or (
                f"{r.outcome.get('name', '')}:{r.outcome.get('version', '')}"
                if r.outcome.get("version")
                else ""
            ),
        }
        for r in ledger.runs()
    ]
    if state(ctx).output == "json":
        emit(ctx, {"leader": leader, "runs": rows})
    else:
        stderr().print(f"leader: {leader or '(none)'}")
        emit(ctx, rows, title="retraining runs")
