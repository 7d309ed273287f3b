"""Edge-agent benchmark: floor, agent, naive FastAPI, MLServer — one run, one core.

Every server is pinned to CPU 0 with ``taskset``; the load generator runs on
CPU 1 and speaks raw HTTP/1.1 over keep-alive sockets so that it is not the
bottleneck. Same model everywhere (XGBoost 200 trees, depth 6, 20 inputs, ONNX,
one onnxruntime thread). Results are appended to docs/benchmarks.md by
``python -m bench.agent``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.agent_bundle import build_bundle, oip
from bench.doc import write_section
from bench.load import (
    agent_command,
    closed_loop,
    drive,
    free_port,
    open_loop,
    peak_rss_mb,
    start,
    wait_ready,
)

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
MLSERVER_VENV = Path(
    os.environ.get("BENCH_MLSERVER_VENV", ROOT / "build" / "bench" / "mlserver-venv")
)
MLSERVER_PINS = ["mlserver==1.7.1", "onnxruntime==1.31.1", "numpy<2.3"]


def ensure_mlserver_venv() -> bool:
    """MLServer lives in its own venv (its pins clash with ours); made on first use."""
    if (MLSERVER_VENV / "bin" / "mlserver").exists():
        return True
    print(f"installing MLServer into {MLSERVER_VENV} (first run only) …", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=True)
        subprocess.run(
            [str(MLSERVER_VENV / "bin" / "pip"), "install", "-q", *MLSERVER_PINS],
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        print(
            f"MLServer not installed ({exc}); it is left out of the table", flush=True
        )
        return False
    return True


MARK = "## Edge agent serving"
FLOOR = "constant answer, no work (the load generator's floor)"


@dataclass
class Target:
    name: str
    url_path: str
    body_one: bytes
    body_batch: bytes
    pid: int = 0
    port: int = 0


def pct(values: list[float], q: float) -> float:
    return (
        float(np.percentile(np.asarray(values) * 1000, q)) if values else float("nan")
    )


def floor(bundle: Path, x: np.ndarray) -> dict[str, float]:
    """(a) onnxruntime in-process, one thread."""
    from edgeloop_components import export

    sess = export.session(bundle / "model.onnx", threads=1)
    one, batch = {"input": x[:1]}, {"input": x[:100]}
    singles, batches = [], []
    for _ in range(3000):
        t = time.perf_counter()
        sess.run(["probabilities"], one)
        singles.append(time.perf_counter() - t)
    for _ in range(300):
        t = time.perf_counter()
        sess.run(["probabilities"], batch)
        batches.append(time.perf_counter() - t)
    return {
        "rps": 1 / statistics.median(singles),
        "p50": pct(singles, 50),
        "p99": pct(singles, 99),
        "batch_p50": pct(batches, 50),
        "batch_rows_s": 100 / statistics.median(batches),
    }


def bookkeeping_overhead(bundle: Path, x: np.ndarray) -> dict[str, float]:
    """CPU of the window monitor (rows copied in, windows closed) per scored row.

    Returned as a share of ``session.run`` for the same rows; the caller also
    relates it to the whole request's CPU measured over HTTP.
    """
    from edgeloop_agent.contracts import verify_bundle
    from edgeloop_agent.drift.monitor import WindowMonitor
    from edgeloop_agent.scoring.onnx import OnnxScorer
    from edgeloop_agent.settings import DriftSettings, NodeSettings

    manifest = verify_bundle(bundle)
    scorer = OnnxScorer(1)
    scorer.load(bundle / "model.onnx")
    monitor = WindowMonitor(manifest, "1", DriftSettings(), NodeSettings(), time.time)
    out: dict[str, float] = {}
    for label, rows in (("1 row", x[:1]), ("100 rows", x[:100])):
        n = 20_000 if len(rows) == 1 else 1_000
        scores = scorer.predict(rows)
        t = time.process_time()
        for _ in range(n):
            scorer.predict(rows)
        predict = time.process_time() - t
        t = time.process_time()
        for _ in range(n):
            monitor.observe(rows, scores)  # includes every window close it triggers
        out[label] = (time.process_time() - t) / predict
        out[f"{label} us"] = (time.process_time() - t) / n * 1e6
    return out


def run_servers(
    bundle: Path, x: np.ndarray, work: Path, seconds: float, rate: float
) -> list[dict[str, object]]:
    """Every server side by side in one run: throughput, latency, RSS.

    Long: one loop over the targets, each started, loaded closed- and
    open-loop, measured and stopped in turn, so all ratios come from one run.
    """
    one, batch = x[:1], x[:100]
    targets = [
        Target("edgeloop agent", "/v2/models/bench/infer", oip(one), oip(batch)),
        Target(
            "naive FastAPI + pydantic",
            "/predict",
            json.dumps({"inputs": one.tolist()}).encode(),
            json.dumps({"inputs": batch.tolist()}).encode(),
        ),
    ]
    have_mlserver = ensure_mlserver_venv()
    if have_mlserver:
        targets.append(
            Target(
                "MLServer 1.7.1 (custom ONNX runtime)",
                "/v2/models/bench/infer",
                oip(one),
                oip(batch),
            )
        )
    # the floor first, on a machine nothing else has run on yet; listed last
    targets.insert(0, Target(FLOOR, "/", oip(one), oip(batch)))
    results = []
    for target in targets:
        port = free_port()
        log = work / f"{target.name.split()[0]}.log"
        if target.name.startswith("edgeloop"):
            proc = start(
                agent_command(port, bundle),
                {
                    "EDGELOOP_AGENT_MODEL__CACHE_DIR": str(work / "cache"),
                    "EDGELOOP_AGENT_OUTBOX__PATH": str(work / "outbox.sqlite"),
                },
                ROOT,
                log,
            )
            ready = "/v2/health/ready"
        elif target.name.startswith("naive"):
            proc = start(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "bench.servers.naive_fastapi:app",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                {"BENCH_MODEL": str(bundle / "model.onnx")},
                ROOT,
                log,
            )
            ready = "/docs"
        elif target.name.startswith(FLOOR):
            proc = start(
                [sys.executable, "-m", "bench.constant_server", str(port)],
                {},
                ROOT,
                log,
            )
            ready = "/"
        else:
            model_dir = work / "mlserver"
            shutil.rmtree(model_dir, ignore_errors=True)
            (model_dir / "bench").mkdir(parents=True)
            shutil.copy(
                ROOT / "bench" / "servers" / "mlserver_runtime.py",
                model_dir / "bench" / "runtime.py",
            )
            (model_dir / "settings.json").write_text(
                json.dumps(
                    {
                        "http_port": port,
                        "grpc_port": free_port(),
                        "metrics_port": free_port(),
                        "host": "127.0.0.1",
                        "parallel_workers": 0,
                        "metrics_endpoint": None,
                        "debug": False,
                    }
                )
            )
            (model_dir / "bench" / "model-settings.json").write_text(
                json.dumps(
                    {
                        "name": "bench",
                        "implementation": "runtime.OnnxModel",
                        "parameters": {"uri": str(bundle / "model.onnx")},
                    }
                )
            )
            proc = start(
                [str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(model_dir)],
                {},
                model_dir / "bench",
                log,
            )
            ready = "/v2/models/bench/ready"
        try:
            wait_ready(port, ready)
            drive(closed_loop(port, target.url_path, target.body_one, 1.0))  # warm-up
            rps, single = drive(
                closed_loop(port, target.url_path, target.body_one, seconds)
            )
            batch_rps, batches = drive(
                closed_loop(port, target.url_path, target.body_batch, seconds, 4)
            )
            fixed, failures = drive(
                open_loop(port, target.url_path, target.body_one, rate, seconds)
            )
            results.append(
                {
                    "name": target.name,
                    "rps": rps,
                    "p50": pct(single, 50),
                    "p99": pct(single, 99),
                    "batch_rows_s": batch_rps * 100,
                    "batch_p50": pct(batches, 50),
                    "fixed_p50": pct(fixed, 50),
                    "fixed_p99": pct(fixed, 99),
                    "fixed_failures": failures,
                    "rss_mb": peak_rss_mb(proc.pid),
                }
            )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    if not have_mlserver:
        results.append({"name": f"MLServer: not measured (no venv at {MLSERVER_VENV})"})
    results.sort(key=lambda row: row["name"] == FLOOR)  # stable: the agent stays first
    return results


def _verdicts(agent: dict[str, object], others: list[dict[str, object]]) -> list[str]:
    """Issue #13's serving targets, each met or missed, from this run."""

    def ratio(prefix: str) -> float | None:
        for row in others:
            if str(row["name"]).startswith(prefix) and "rps" in row:
                return float(agent["rps"]) / float(row["rps"])  # type: ignore[arg-type]
        return None

    def verdict(ok: bool) -> str:
        return "met" if ok else "missed"

    lines = ["| target (#13) | this run | |", "| --- | ---: | :---: |"]
    for prefix, label, want in (
        ("naive", "single-row throughput ≥ 2.5× the plain FastAPI endpoint", 2.5),
        ("MLServer", "single-row throughput ≥ 4× MLServer", 4.0),
    ):
        found = ratio(prefix)
        if found is not None:
            lines.append(f"| {label} | {found:.2f}× | {verdict(found >= want)} |")
    p99 = float(agent["fixed_p99"])  # type: ignore[arg-type]
    rss = float(agent["rss_mb"])  # type: ignore[arg-type]
    lines.append(
        f"| p99 ≤ 2 ms at 1,000 req/s | {p99:.2f} ms | {verdict(p99 <= 2.0)} |"
    )
    lines.append(f"| peak RSS ≤ 150 MB | {rss:.0f} MB | {verdict(rss <= 150)} |")
    return lines


def render(
    fl: dict[str, float],
    servers: list[dict[str, object]],
    overhead: dict[str, float],
    rate: float,
    seconds: float,
) -> str:
    agent = servers[0]
    lines = [
        MARK,
        "",
        f"Generated by `python -m bench.agent`. Servers pinned to one core (`taskset -c 0`), load from the other; "
        f"same ONNX model (XGBoost 200 trees, depth 6, 20 inputs), one onnxruntime thread. Closed loop: 8 "
        f"keep-alive connections for {seconds:.0f} s (batches: 4 connections, 100 rows per request). Fixed load: "
        f"{rate:.0f} requests/s open loop for {seconds:.0f} s, latency from the scheduled send time.",
        "",
        "| server | 1-row req/s | p50 / p99 ms | 100-row batches: rows/s (p50 ms) | at fixed load: p50 / p99 ms (failed) | peak RSS MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| (a) onnxruntime in-process (floor) | {fl['rps']:,.0f} | {fl['p50']:.3f} / {fl['p99']:.3f} | "
        f"{fl['batch_rows_s']:,.0f} ({fl['batch_p50']:.2f}) | – | – |",
    ]
    for label, row in zip(("(b)", "(c)", "(d)", "(e)"), servers, strict=False):
        if "rps" not in row:
            lines.append(f"| {label} {row['name']} | – | – | – | – | – |")
            continue
        batches = (
            "– (scores nothing)"
            if row["name"] == FLOOR
            else f"{row['batch_rows_s']:,.0f} ({row['batch_p50']:.2f})"
        )
        lines.append(
            f"| {label} {row['name']} | {row['rps']:,.0f} | {row['p50']:.2f} / {row['p99']:.2f} | "
            f"{batches} | {row['fixed_p50']:.2f} / {row['fixed_p99']:.2f} "
            f"({row['fixed_failures']}) | {row['rss_mb']:.0f} |"
        )
    floor_label = next(
        (
            label
            for label, row in zip("bcde", servers, strict=False)
            if row["name"] == FLOOR
        ),
        "–",
    )
    lines += ["", "Ratios of the agent's single-row throughput:", ""]
    for row in servers[1:]:
        if "rps" in row and row["name"] != FLOOR:
            lines.append(f"* vs {row['name']}: **{agent['rps'] / row['rps']:.2f}×**")
    lines += ["", *_verdicts(agent, servers[1:]), ""]
    lines += [
        "A plain JSON infer request (one FP32 tensor of numbers) is answered inside uvicorn's",
        "HTTP protocol as it is parsed (`edgeloop_agent.api.quick_protocol`: no ASGI task, scope",
        "or messages), or before the middleware when the app is served another way",
        "(`edgeloop_agent.api.quick_infer`); anything else reaches the handlers without FastAPI's",
        "routing (`edgeloop_agent.api.fast_path`); all answer as the routed stack does, tested",
        "side by side. In a 100-row batch the agent also explains every row that alarms on the",
        "node (k+1 ONNX runs per alarming row, issue #14), which the other servers do not do.",
        "Absolute figures move with the machine's load; compare the ratios, which come from one run.",
        "",
        f"Row ({floor_label}) is a server that does no work: its latency at fixed load is what the",
        "load generator (raw HTTP/1.1 on uvloop), the loopback and this 2-core VM add to every",
        "other row's, and its closed-loop rate is the most this client can measure. A",
        "fixed-load p99 is the 50 slowest of one run's requests: a single stall of the machine",
        "moves it, which is why row (e)'s is shown beside the others.",
        "",
        "Where a one-row request's time goes (measured by hand on this machine, same model):",
        "uvicorn with httptools and uvloop answering constant bytes from a bare ASGI app does",
        "~44,000 requests/s (~23 µs each), of which the ASGI round trip (a task, the scope,",
        "`receive`/`send` messages) is what answering inside the protocol saves; the model's",
        "`session.run` costs ~6 µs in a tight loop but ~25-35 µs inside a serving process, where",
        "each request walks 200 trees through a cache that the rest of the request has evicted;",
        "the agent's own Python (parse, checks, drift windows, metrics, answer) is ~30 µs.",
    ]
    request_us = 1e6 / float(agent["rps"]) if "rps" in agent else float("nan")
    lines += [
        "",
        "Drift and data-quality bookkeeping (window monitor: rows copied in, histograms, PSI, quality and",
        "the reservoir sample at each window close), CPU per scored request:",
        "",
        "| request | monitor µs | vs `session.run` alone | vs the agent's whole request CPU |",
        "| --- | ---: | ---: | ---: |",
        f"| 1 row | {overhead['1 row us']:.1f} | {overhead['1 row']:.0%} | {overhead['1 row us'] / request_us:.1%} |",
        f"| 100 rows | {overhead['100 rows us']:.1f} | {overhead['100 rows']:.0%} | "
        f"{overhead['100 rows us'] / (1e6 * 100 / float(agent.get('batch_rows_s', float('nan')))):.1%} |",
        "",
        f"(The agent's whole request CPU is taken as one core divided by its closed-loop rate: "
        f"{request_us:.0f} µs for one row.)",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    opts = parser.parse_args()
    os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="edgeloop-agent-bench-") as tmp:
        work = Path(tmp)
        bundle, x = build_bundle(work)
        fl = floor(bundle, x)
        overhead = bookkeeping_overhead(bundle, x)
        servers = run_servers(bundle, x, work, opts.seconds, opts.rate)
    section = render(fl, servers, overhead, opts.rate, opts.seconds)
    write_section("bench.agent", section, DOC)
    print(section)


if __name__ == "__main__":
    main()
