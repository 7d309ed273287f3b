"""Driving the platform in the demo: the intake server, site links, rollouts, agent probes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from edgeloop.core.errors import EdgeloopError
from edgeloop.demo import stream
from edgeloop.demo.link import SiteLink, wait_until
from edgeloop.rollout.controller import Reconciler, StatusStore
from edgeloop.rollout.spec import EdgeRollout


@contextmanager
def serve(app: Any, port: int) -> Iterator[str]:
    """An ASGI app on 127.0.0.1 in a thread (the intake), stopped on exit."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="error", lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, name="intake", daemon=True)
    thread.start()
    if not wait_until(lambda: server.started or not thread.is_alive(), 30):
        raise EdgeloopError("the intake did not start within 30 s")
    if not server.started:
        raise EdgeloopError("the intake failed to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def site_link(site: str, port: int, nodes: list[str], home: Path) -> Iterator[SiteLink]:
    """A site's link, up, closed on exit."""
    link = SiteLink(site, port, nodes, home / "published", home / "edge").start()
    try:
        yield link
    finally:
        link.close()


def wait_silent(reconciler: Reconciler, nodes: list[str]) -> None:
    """Wait until the controller sees ``nodes`` as silent (their heartbeats aged out)."""

    def silent() -> bool:
        seen = {o.node: o.last_seen for o in reconciler.fleet.observe()}
        now = time.time()
        return all(
            seen.get(n) is None or now - float(seen[n] or 0) > reconciler.silent_after_s
            for n in nodes
        )

    wait_until(silent, 30, 0.2)


def roll_out(
    mark: Callable[[str], None],
    reconciler: Reconciler,
    statuses: StatusStore,
    rollout: EdgeRollout,
    version: str,
) -> EdgeRollout:
    """Reconcile until ``version`` finished rolling out (or failed), marking each wave."""
    deadline = time.monotonic() + 120
    seen = ""
    rollout = statuses.load(rollout)
    while time.monotonic() < deadline:
        rollout = reconciler.reconcile(rollout).rollout
        statuses.save(rollout)
        status = rollout.status
        if status.modelVersion == version and status.wave != seen:
            seen = status.wave
            counts = next((w for w in status.waves if w.name == status.wave), None)
            silent = f", {counts.silent} silent" if counts and counts.silent else ""
            mark(f"rollout of v{version}: wave {status.wave} ({status.phase}{silent})")
        if status.modelVersion == version and status.phase in {
            "Succeeded",
            "RolledBack",
            "Failed",
        }:
            silent_nodes = sum(w.silent for w in status.waves)
            mark(
                f"rollout of v{version}: {status.phase}"
                + (
                    f" with {silent_nodes} silent node(s) to catch up"
                    if silent_nodes
                    else ""
                )
            )
            return rollout
        time.sleep(0.3)
    raise EdgeloopError(
        f"rollout of v{version} did not finish in 120 s "
        f"({rollout.status.phase}, wave {rollout.status.wave})"
    )


def outbox_depth(client: httpx.Client, url: str) -> int:
    """Reports an agent still holds (-1 when it does not answer)."""
    try:
        return int(stream.scored(client, url, "edgeloop_outbox_depth"))
    except httpx.HTTPError:
        return -1


def serving(client: httpx.Client, url: str) -> str:
    """The version an agent serves ("-" when none or unreachable)."""
    try:
        response = client.get(f"{url}/v2/models/edge-model", timeout=5)
        return (
            str(response.json()["versions"][0]) if response.status_code == 200 else "-"
        )
    except (httpx.HTTPError, KeyError, ValueError, IndexError):
        return "-"
