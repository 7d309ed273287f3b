"""The intake process a fleet benchmark drives: start it, issue tokens, post, read its CPU.

Shared by :mod:`bench.fleet` (one intake per row) and :mod:`bench.fleet_growth`
(a second intake beside it, holding a small fleet).
"""

from __future__ import annotations

import asyncio
import csv
import subprocess
import sys
import time
from pathlib import Path

from bench.load import exchange, free_port


def spawn_intake(
    home: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    """``edgeloop intake serve`` pinned to core 0, answering; (process, base URL).

    Quotas are lifted: the benchmark's agents post a day of reports at once,
    which a real agent spreads over the day.
    """
    from edgeloop.demo.processes import spawn_logged, wait_http

    port = free_port()
    binary = str(Path(sys.executable).with_name("edgeloop"))
    proc = spawn_logged(
        ["taskset", "-c", "0", binary, "-q", "intake", "serve", "--port", str(port)],
        home / "intake.log",
        env={
            **env,
            "EDGELOOP_INTAKE__QUOTA_REPORTS_PER_S": "100000",
            "EDGELOOP_INTAKE__QUOTA_BYTES_PER_S": "1e9",
        },
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz", proc, "intake", home / "intake.log", 60)
    except BaseException:
        proc.terminate()
        proc.wait(timeout=30)
        raise
    return proc, url


async def post_all(
    url: str,
    batches: dict[str, bytes],
    tokens: dict[str, str],
    concurrency: int,
    failed: list[str] | None = None,
) -> list[float]:
    """POST every node's batch, ``concurrency`` at once; the latencies in ms.

    Raw HTTP/1.1 over keep-alive asyncio streams with each request's bytes
    built before the clock starts: httpx itself took ~6 ms of client CPU per
    request with 1,000 connections open, which made a burst measure the load
    generator rather than the intake. With ``failed`` given, a POST that errs
    (connection reset, a status other than 200) is listed there instead of
    stopping the run, and its latency is left out.
    """
    host, port = url.removeprefix("http://").split(":")
    requests = [
        (
            node,
            (
                f"POST /v1/reports HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Authorization: Bearer {tokens[node]}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body,
        )
        for node, body in batches.items()
    ]
    latencies: list[float] = []

    async def worker() -> None:
        stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while requests:
            node, raw = requests.pop()
            start = time.perf_counter()
            try:
                if stream is None:
                    stream = await asyncio.open_connection(host, int(port))
                status, text = await exchange(*stream, raw)
                if status != 200:
                    raise RuntimeError(f"{node}: {status} {text[:200]!r}")
            except (OSError, asyncio.IncompleteReadError, RuntimeError):
                if stream is not None:
                    stream[1].close()
                    stream = None
                if failed is None:
                    raise
                failed.append(node)
                continue
            latencies.append((time.perf_counter() - start) * 1000)
        if stream is not None:
            stream[1].close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def issue_tokens(
    home: Path, nodes: dict[str, str], env: dict[str, str]
) -> tuple[dict[str, str], float]:
    """Issue every node's token with the inventory command; (tokens, seconds)."""
    inventory = home / "nodes.csv"
    with inventory.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["node", "site"])
        writer.writerows(sorted(nodes.items()))
    out = home / "tokens"
    binary = str(Path(sys.executable).with_name("edgeloop"))
    start = time.perf_counter()
    subprocess.run(
        [
            binary,
            "-q",
            "intake",
            "token",
            "create",
            "--inventory",
            str(inventory),
            "--out",
            str(out),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - start
    tokens = {
        node: (out / site / node).read_text().strip() for node, site in nodes.items()
    }
    return tokens, seconds
