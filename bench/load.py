"""Load generation for the serving benchmark: start servers, drive HTTP load over raw sockets.

Closed loop (N connections as fast as answers come) and open loop (a fixed
request rate regardless of answers, so latency includes queueing), both over
keep-alive sockets on 127.0.0.1, plus peak-RSS measurement of the server tree.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from edgeloop.demo.processes import spawn_logged


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (and nothing else)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive(coro: Any) -> Any:
    """Run a load coroutine on uvloop (asyncio's own loop where it is missing).

    Measured against a server that does no work (``bench.constant_server``) at
    1,000 requests/s: asyncio's default loop put p50 0.64 / p99 1.5 ms on every
    request by itself, uvloop ~0.2 / ~1.0 ms.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    cmd: list[str], env: dict[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    return spawn_logged(
        ["taskset", "-c", "0", *cmd], log, env={**os.environ, **env}, cwd=cwd
    )


def agent_command(port: int, bundle: Path) -> list[str]:
    """``edgeloop-agent serve`` on ``port`` with ``bundle``, quiet, from this venv."""
    import sys

    return [
        str(Path(sys.executable).with_name("edgeloop-agent")),
        "serve",
        "--port",
        str(port),
        "--bundle",
        str(bundle),
        "--log-level",
        "warning",
    ]


def wait_ready(port: int, path: str, timeout: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (
                httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code
                == 200
            ):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server on {port} not ready")


def server_pid(proc: subprocess.Popen[bytes]) -> int:
    """The Python process behind ``taskset`` (taskset execs, so it is the same pid)."""
    return proc.pid


def peak_rss_mb(pid: int) -> float:
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def _children(pid: int) -> list[int]:
    try:
        out = subprocess.run(
            ["pgrep", "-P", str(pid)], capture_output=True, text=True
        ).stdout.split()
    except OSError:
        return []
    kids = [int(p) for p in out]
    return kids + [g for k in kids for g in _children(k)]


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, bytes]:
    """Send one raw HTTP/1.1 request on a keep-alive stream; the status and body."""
    writer.write(raw)
    await writer.drain()
    header = await reader.readuntil(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    length = 0
    for line in header.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return status, await reader.readexactly(length)


async def _request(reader, writer, raw: bytes) -> float:
    start = time.perf_counter()
    status, _ = await exchange(reader, writer, raw)
    if status != 200:
        raise RuntimeError(f"HTTP {status}")
    return time.perf_counter() - start


def _raw(port: int, path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def closed_loop(
    port: int, path: str, body: bytes, seconds: float, connections: int = 8
) -> tuple[float, list[float]]:
    raw = _raw(port, path, body)
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < stop:
            latencies.append(await _request(reader, writer, raw))
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return len(latencies) / (time.perf_counter() - start), latencies


async def open_loop(
    port: int, path: str, body: bytes, rate: float, seconds: float
) -> tuple[list[float], int]:
    """Send at a fixed rate regardless of answers; latency includes queueing."""
    raw = _raw(port, path, body)
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    failures = 0

    async def one(scheduled: float) -> None:
        nonlocal failures
        conn = await pool.get()
        try:
            await _request(*conn, raw)
            latencies.append(time.perf_counter() - scheduled)
        except Exception:
            failures += 1
        finally:
            pool.put_nowait(conn)

    tasks = []
    start = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        when = start + i / rate
        delay = when - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(when)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        _, writer = pool.get_nowait()
        writer.close()
    return latencies, failures
