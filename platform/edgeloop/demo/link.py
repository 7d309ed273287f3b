"""A site's WAN link, so the demo can take a whole site offline and bring it back.

Two things cross the link: the agents' reports to the intake (a TCP relay on
127.0.0.1 in front of the intake; when the link is down it refuses and drops
connections, exactly what an agent sees on a dead uplink) and the desired-model
record (what edgecore would project from the ConfigMap; copied from where the
rollout's local sink writes it to where the agent reads it, only while up).
Nothing is faked on the agents' side: they run unmodified and must buffer,
keep scoring on the model they have, and catch up on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SiteLink:
    """TCP relay to the intake plus desired-model sync, switchable up and down."""

    def __init__(
        self,
        site: str,
        target_port: int,
        nodes: Iterable[str],
        published: Path,
        edge: Path,
    ) -> None:
        self.site = site
        self.port = free_port()
        self._target = target_port
        self._nodes = list(nodes)
        self._published = published
        self._edge = edge
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"link-{site}", daemon=True
        )
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._stop = threading.Event()
        # up() syncs at once from the caller's thread while the sync thread
        # may be copying too: one copier at a time, or both race on the .tmp.
        self._sync_lock = threading.Lock()
        self._sync = threading.Thread(
            target=self._sync_forever, name=f"sync-{site}", daemon=True
        )
        self.is_up = False

    def start(self) -> SiteLink:
        """Start both halves with the link up."""
        self._thread.start()
        self._sync.start()
        self.up()
        return self

    def up(self) -> None:
        """Bring the link up: accept connections again and resume the sync."""
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        self.is_up = True
        self.sync_once()

    def down(self) -> None:
        """Cut the link: stop listening, drop every open connection, pause the sync."""
        self.is_up = False
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)

    def close(self) -> None:
        """Stop everything: connections closed, loop stopped and closed, threads joined."""
        self._stop.set()
        with contextlib.suppress(Exception):
            self.down()
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._finish(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._sync.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    async def _finish(self) -> None:
        """Let every relay still running reach its ``finally`` (which closes its sockets)."""
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._relay, "127.0.0.1", self.port, reuse_address=True
            )

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._pipes):
            task.cancel()

    async def _relay(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1", self._target
            )
        except OSError:
            writer.close()
            return
        tasks = {
            asyncio.ensure_future(_pipe(reader, up_writer)),
            asyncio.ensure_future(_pipe(up_reader, writer)),
        }
        self._pipes |= tasks
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            self._pipes -= tasks
            for w in (writer, up_writer):
                w.close()
                with contextlib.suppress(Exception):
                    await w.wait_closed()

    def sync_once(self) -> None:
        """Copy changed desired-model records to the site's nodes (when up)."""
        if not self.is_up:
            return
        with self._sync_lock:
            self._copy_changed()

    def _copy_changed(self) -> None:
        for node in self._nodes:
            src = self._published / node / "desired-model.json"
            dst = self._edge / node / "desired-model.json"
            if not src.exists():
                continue
            data = src.read_bytes()
            if dst.exists() and dst.read_bytes() == data:
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_suffix(".tmp")
            shutil.copyfile(src, tmp)
            tmp.replace(dst)

    def _sync_forever(self) -> None:
        while not self._stop.wait(0.2):
            with contextlib.suppress(OSError):
                self.sync_once()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


def wait_until(
    predicate: Callable[[], bool], timeout: float, step: float = 0.1
) -> bool:
    """Poll ``predicate()`` until true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False
