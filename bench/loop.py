"""Closed-loop benchmarks: intake throughput, Evidently vs the agent's sketch, drift to fleet.

Run with ``python -m bench.loop [--quick]`` (part of ``make bench``); writes its
section of docs/benchmarks.md.

1. Intake: a real ``edgeloop intake serve`` process pinned to one core, fed by
   many concurrent simulated agents (async httpx, on the other core) posting
   report batches as agents do (heartbeats and day windows). Reports/s and
   request p50/p99, for batches of 1, 10 and 50 reports.
2. Per window of drift monitoring: the agent's sketch (bin counts, PSI,
   quality, sample) against one Evidently run (data drift + data summary) on
   the window's sample, both on one core in this process.
3. The demo's time from drift onset to the whole reachable fleet running the
   retrained model (a full ``edgeloop demo`` run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np

from bench.doc import write_section
from edgeloop.demo.processes import spawn_logged, wait_http
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop_agent.contracts import (
    DriftWindow,
    FeatureWindow,
    Heartbeat,
    Report,
    ReportBatch,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
MARK = "## Intake, monitoring cost and the closed loop"
FEATURES = 32
RETRIES = [0]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _report(node: str, i: int, rng: np.random.Generator) -> Report:
    now = datetime(2026, 7, 1, tzinfo=UTC) + timedelta(minutes=i)
    if i % 4:
        body: Heartbeat | DriftWindow = Heartbeat(
            site="s",
            model_version="1",
            requests=i,
            errors=0,
            latency_p99_ms=3.0,
            outbox_depth=0,
            uptime_s=float(i),
        )
    else:
        body = DriftWindow(
            site="s",
            model_name="pump-failure",
            model_version="1",
            window_start=now - timedelta(days=1),
            window_end=now,
            rows=864,
            features=tuple(
                FeatureWindow(
                    name=f"f{j}",
                    counts=tuple(int(c) for c in rng.multinomial(864, [0.1] * 10)),
                    psi=0.01,
                )
                for j in range(FEATURES)
            ),
            psi_threshold=0.2,
            drifted_share=0.0,
        )
    return Report(key=f"{node}:{i:08d}", node=node, created_at=now, body=body)


async def _agent(
    client: httpx.AsyncClient,
    url: str,
    token: str,
    bodies: list[bytes],
    latencies: list[float],
) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for body in bodies:
        start = time.perf_counter()
        for attempt in range(5):  # as agents do: redeliver the same keys (idempotent)
            try:
                response = await client.post(
                    f"{url}/v1/reports", content=body, headers=headers
                )
                break
            except (httpx.ReadError, httpx.RemoteProtocolError):
                # a kept-alive connection the busy server closed under us
                RETRIES[0] += 1
                if attempt == 4:
                    raise
        latencies.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise RuntimeError(
                f"intake answered {response.status_code}: {response.text}"
            )


def bench_intake(agents: int, reports_per_agent: int, batch: int) -> dict[str, float]:
    """One intake process on core 0; ``agents`` concurrent senders on core 1.

    Long: start the intake, onboard, stream, measure and stop in one place so every figure comes from the same run.
    """
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory(prefix="edgeloop-bench-intake-") as tmp:
        home = Path(tmp)
        store = IntakeStore(f"sqlite:///{home / 'intake.db'}")
        tokens = {
            f"gw-{a:03d}": store.create_token(f"gw-{a:03d}") for a in range(agents)
        }
        payloads = {
            node: [
                ReportBatch(
                    reports=tuple(
                        _report(node, i, rng) for i in range(start, start + batch)
                    )
                )
                .model_dump_json()
                .encode()
                for start in range(0, reports_per_agent, batch)
            ]
            for node in tokens
        }
        port = _free_port()
        env = {**os.environ, "EDGELOOP_HOME": str(home)}
        binary = Path(sys.executable).with_name("edgeloop")
        proc = spawn_logged(
            [
                "taskset",
                "-c",
                "0",
                str(binary),
                "-q",
                "intake",
                "serve",
                "--port",
                str(port),
            ],
            home / "intake.log",
            env=env,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{url}/healthz", proc, "intake", home / "intake.log", 30)
            os.sched_setaffinity(0, {1})
            latencies: list[float] = []

            async def run() -> float:
                limits = httpx.Limits(max_connections=agents)
                async with httpx.AsyncClient(timeout=60, limits=limits) as client:
                    start = time.perf_counter()
                    await asyncio.gather(
                        *(
                            _agent(client, url, tokens[n], payloads[n], latencies)
                            for n in tokens
                        )
                    )
                    return time.perf_counter() - start

            elapsed = asyncio.run(run())
        except Exception:
            print((home / "intake.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            proc.terminate()
            proc.wait(timeout=15)
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        stored = store.count()
    total = agents * reports_per_agent
    retries, RETRIES[0] = RETRIES[0], 0
    if stored != total:
        raise RuntimeError(f"stored {stored} of {total} reports")
    lat = np.asarray(latencies) * 1000
    return {
        "batch": batch,
        "agents": agents,
        "reports": total,
        "reports_per_s": total / elapsed,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "retries": retries,
    }


def bench_monitoring(rows: int, repeats: int) -> dict[str, float]:
    """Agent sketch per window vs one Evidently run on that window's sample."""
    from edgeloop.monitor.evidently_runs import run_report
    from edgeloop_agent.contracts import read_manifest
    from edgeloop_agent.drift.monitor import WindowMonitor
    from edgeloop_agent.settings import DriftSettings, NodeSettings

    from .agent import build_bundle

    with tempfile.TemporaryDirectory(prefix="edgeloop-bench-mon-") as tmp:
        bundle, _ = build_bundle(Path(tmp))
        manifest = read_manifest(bundle)
    os.sched_setaffinity(0, {0})
    names = manifest.features.input_names()
    rng = np.random.default_rng(2)
    settings = DriftSettings(window_readings=rows, sample_size=40)
    monitor = WindowMonitor(manifest, "1", settings, NodeSettings(site="s"), time.time)
    inputs = rng.normal(size=(rows, len(names))).astype(np.float32)
    scores = rng.random(rows)
    raw = rng.normal(size=(rows, len(manifest.sensors)))
    entities = [f"p{i % 6}" for i in range(rows)]
    sketch = []
    for _ in range(repeats):
        start = time.process_time()
        for i in range(0, rows, 100):  # requests of 100 readings
            monitor.observe(
                inputs[i : i + 100],
                scores[i : i + 100],
                raw[i : i + 100],
                entities[i : i + 100],
            )
        sketch.append(time.process_time() - start)
    import pandas as pd

    sample = pd.DataFrame(inputs[:40], columns=names).astype(float)
    sample["score"] = scores[:40]
    reference = pd.DataFrame(rng.normal(size=(200, len(names))), columns=names)
    reference["score"] = rng.random(200)
    meta = {"model": "m", "version": "1", "cohort": "s", "window": "w"}
    run_report(sample, reference, meta)  # warm imports
    evidently, drift_only = [], []
    for _ in range(max(1, repeats // 5)):
        start = time.process_time()
        run_report(sample, reference, meta)
        evidently.append(time.process_time() - start)
        start = time.process_time()
        run_report(sample, reference, meta, summary=False)
        drift_only.append(time.process_time() - start)
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    return {
        "rows": rows,
        "inputs": len(names),
        "sketch_ms": float(np.median(sketch)) * 1000,
        "evidently_ms": float(np.median(evidently)) * 1000,
        "drift_only_ms": float(np.median(drift_only)) * 1000,
    }


def bench_loop() -> dict[str, float]:
    """A full ``edgeloop demo`` run; milestones in seconds since its start."""
    from rich.console import Console

    from edgeloop.core.settings import PlatformSettings
    from edgeloop.demo.run import LoopSize, run_loop

    with tempfile.TemporaryDirectory(prefix="edgeloop-bench-loop-") as tmp:
        result = run_loop(
            PlatformSettings(home=Path(tmp)), Console(quiet=True), LoopSize()
        )
    out = dict(result.timings)
    out["elapsed"] = result.elapsed_s
    return out


def main() -> None:
    """Long: runs each measurement in turn and writes the one docs/benchmarks.md block they share."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller runs, no demo")
    args = parser.parse_args()
    per_agent = 200 if args.quick else 1000
    intake = [bench_intake(50, per_agent, batch) for batch in (1, 10, 50)]
    monitoring = bench_monitoring(864, 5 if args.quick else 20)
    loop = {} if args.quick else bench_loop()
    lines = [
        MARK,
        "",
        "Generated by `python -m bench.loop`. The intake runs as its own process "
        "pinned to one core (`taskset -c 0`, SQLite store); 50 simulated agents post "
        "from the other core, three heartbeats to one day-window (32 inputs) as agents do.",
        "",
        "| reports per POST | reports | reports/s (one core) | request p50 ms | request p99 ms | redeliveries |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in intake:
        lines.append(
            f"| {r['batch']} | {r['reports']:,} | **{r['reports_per_s']:,.0f}** | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['retries']} |"
        )
    best = max(r["reports_per_s"] for r in intake)
    lines += [
        "",
        f"Target ≥ 2,000 reports/s on one core: {'met' if best >= 2000 else 'MISSED'} "
        f"with batched delivery ({best:,.0f}/s). One report per POST pays a durable "
        "SQLite commit (fsync) and the HTTP round trip per report; agents batch up to "
        "`outbox.batch_size` (100) reports per POST, and a node catching up after days "
        "offline sends full batches.",
        "",
        "Monitoring cost per window (one core, CPU time, "
        f"{monitoring['rows']} readings x {monitoring['inputs']} inputs):",
        "",
        "| what | per window ms | relative |",
        "| --- | ---: | ---: |",
        f"| agent sketch (bins, PSI, quality, sample) | {monitoring['sketch_ms']:.1f} | 1× |",
        f"| Evidently data drift on the window's 40-row sample (scheduled runs) | "
        f"{monitoring['drift_only_ms']:.0f} | {monitoring['drift_only_ms'] / monitoring['sketch_ms']:,.0f}× |",
        f"| Evidently data drift + data summary (`monitor.summary`, `monitor report`) | "
        f"{monitoring['evidently_ms']:.0f} | {monitoring['evidently_ms'] / monitoring['sketch_ms']:,.0f}× |",
        "",
        "Most of Evidently's time is spent building plotly figures for every metric "
        "(measured with cProfile), so the platform runs it per version and cohort over a "
        "period, not per node window, leaves the summary preset out of scheduled runs "
        "unless asked; the sketches are what the trigger reads.",
        "",
    ]
    if loop:
        onset = loop.get("drift_onset", 0.0)
        lines += [
            "The closed loop (`edgeloop demo`, default size: 3 sites x 12 pumps, 6 agents), "
            "seconds of wall time:",
            "",
            "| milestone | since start s | since drift onset s |",
            "| --- | ---: | ---: |",
        ]
        for key, label in (
            ("drift_onset", "streaming of the first shifted day begins"),
            ("trigger", "drift trigger fired"),
            ("reachable_on_new", "every reachable node runs the retrained model"),
            ("all_on_new", "the offline site is back and runs it too"),
            ("elapsed", "demo finished (incl. Evidently and summary)"),
        ):
            if key in loop:
                lines.append(f"| {label} | {loop[key]:.1f} | {loop[key] - onset:.1f} |")
        lines += [
            "",
            f"Simulated days from drift onset to the trigger: {loop.get('days_onset_to_trigger', float('nan')):.0f} "
            "(day windows, two consecutive drifted windows). Most of the time after the "
            "trigger is the training pipeline (kfp.local, ~30 s).",
            "",
        ]
    section = "\n".join(lines)
    write_section("bench.loop", section, DOC)
    print(section)


if __name__ == "__main__":
    main()
