"""A fleet against one intake: onboarding, drifted days, reads, triggers and storage.

Run with ``python -m bench.fleet [--nodes 1000 --sites 100 --days 3]``; writes
its section of docs/benchmarks.md (one row per fleet size given).

The intake is a real ``edgeloop intake serve`` process on SQLite, pinned to
core 0; simulated agents (the project's own wire models, async httpx) post
from core 1 over HTTP with their own bearer tokens, issued by ``edgeloop intake
token create --inventory``. Per fleet size:

1. onboarding: every node posts its heartbeat and the windows that complete
   its drift baseline (``baseline.windows``), ``--concurrency`` nodes at once;
   POST p50/p99 and the intake's CPU per node (from /proc);
2. ``--days`` days: per node and day 24 heartbeats and one day window; from day
   1, 10 % of the sites shift (their drift windows move mass to other bins)
   and 1 % of the nodes report a stuck sensor;
3. reads: ``GET /v1/cohorts`` and ``GET /v1/fleet`` latency with a reader
   token, trigger evaluation over the new windows (in this process, against
   the same database) and with nothing new;
4. storage: database bytes per node-day; whether the drift trigger fired for
   exactly the shifted sites.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.doc import write_section
from bench.load import free_port
from edgeloop_agent.contracts import (
    DriftWindow,
    FeatureWindow,
    Heartbeat,
    Report,
    ReportBatch,
    SensorQuality,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
MARK = "## Fleet at scale: one intake"
INPUTS = 16
BINS = 10
CALM = np.full(BINS, 1 / BINS)
SHIFTED = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.05, 0.1, 0.2, 0.3, 0.35])
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=20)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (and nothing else)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _window(
    node: str, site: str, day: int, rng: np.random.Generator, shifted: bool, stuck: bool
) -> Report:
    end = T0 + timedelta(days=day + 1)
    features = []
    for j in range(INPUTS):
        p = SHIFTED if shifted and j < INPUTS // 2 else CALM
        counts = tuple(int(c) for c in rng.multinomial(1000, p))
        features.append(FeatureWindow(name=f"f{j}", counts=counts, psi=0.0))
    quality = (
        (SensorQuality(name="f0", readings=1000, stuck_entities=("p1",)),)
        if stuck
        else ()
    )
    body = DriftWindow(
        site=site,
        model_name="pump-failure",
        model_version="1",
        window_start=end - timedelta(days=1),
        window_end=end,
        rows=1000,
        features=tuple(features),
        psi_threshold=0.2,
        drifted_share=0.5 if shifted else 0.0,
        quality=quality,
    )
    return Report(key=f"{node}:drift:{day}", node=node, created_at=end, body=body)


def _heartbeats(node: str, site: str, day: int, n: int) -> list[Report]:
    out = []
    for h in range(n):
        at = T0 + timedelta(days=day, hours=24 * h / n)
        body = Heartbeat(
            site=site,
            model_name="pump-failure",
            model_version="1",
            requests=1000 * (day * n + h),
            errors=0,
            latency_p99_ms=3.0,
            outbox_depth=0,
            uptime_s=float(3600 * (day * 24 + h)),
        )
        out.append(
            Report(key=f"{node}:hb:{day}:{h}", node=node, created_at=at, body=body)
        )
    return out


async def _post_all(
    url: str, batches: dict[str, bytes], tokens: dict[str, str], concurrency: int
) -> list[float]:
    """POST every node's batch, ``concurrency`` at once; the latencies in ms."""
    latencies: list[float] = []
    queue = list(batches.items())
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def worker() -> None:
            while queue:
                node, body = queue.pop()
                headers = {
                    "Authorization": f"Bearer {tokens[node]}",
                    "Content-Type": "application/json",
                }
                start = time.perf_counter()
                response = await client.post(
                    f"{url}/v1/reports", content=body, headers=headers
                )
                latencies.append((time.perf_counter() - start) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(
                        f"{node}: {response.status_code} {response.text[:200]}"
                    )

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def _tokens(
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


AGENT_TIMEOUT_MS = 10_000
"""The agent's delivery timeout (``outbox.timeout_s``): a slower POST is retried."""


def _plan_from_intake(url: str, reader: str, nodes: dict[str, str]) -> float:
    """Seconds for one `rollout plan --intake` pass over the whole fleet.

    The fleet is read from the intake over HTTP (``IntakeFleet``), a group per
    site, then planned, rendered and validated as the controller does; only the
    registry is a fixed record (MLflow is not part of this benchmark).
    """
    from edgeloop.rollout.controller import Reconciler
    from edgeloop.rollout.fleet import IntakeFleet
    from edgeloop.rollout.plan import RegistryView
    from edgeloop.rollout.spec import EdgeRollout
    from edgeloop_agent.contracts import DesiredModel

    by_site: dict[str, list[str]] = {}
    for node, site in nodes.items():
        by_site.setdefault(site, []).append(node)
    sites = sorted(by_site)
    rollout = EdgeRollout.model_validate(
        {
            "metadata": {"name": "fleet"},
            "spec": {
                "model": {"name": "pump-failure", "alias": "champion"},
                "runtime": {"image": "ghcr.io/edgeloop/edgeloop-agent:0.1.0"},
                "groups": [{"name": s, "site": s, "nodes": by_site[s]} for s in sites],
                "waves": [
                    {"name": "canary", "groups": sites[:1]},
                    {"name": "rest", "percent": 100},
                ],
            },
        }
    )
    record = DesiredModel(
        model_name="pump-failure",
        version="1",
        bundle_uri="https://models.example/pump-failure/1",
        bundle_sha256="1" * 64,
    )
    from bench.rollout import FITS

    reconciler = Reconciler(
        registry_view=lambda _: RegistryView(record, latency=[FITS]),
        fleet=IntakeFleet(url, token=reader),
        sink=None,
    )
    start = time.perf_counter()
    reconciler.reconcile(rollout, dry_run=True)
    return time.perf_counter() - start


def run_fleet(
    n_nodes: int,
    n_sites: int,
    days: int,
    concurrency: int,
    onboard_concurrency: int | None = None,
) -> dict[str, Any]:
    """One fleet size end to end; every figure from the same intake process.

    Long: start, onboard, stream days, read and evaluate in one place so the
    intake's CPU counters cover exactly the phases measured.
    """
    from edgeloop.core.settings import PlatformSettings
    from edgeloop.demo.processes import spawn_logged, wait_http
    from edgeloop.monitor.intake.store import IntakeStore
    from edgeloop.triggers.engine import TriggerEngine
    from edgeloop.triggers.policy import TriggerPolicy

    rng = np.random.default_rng(7)
    sites = [f"site-{s:04d}" for s in range(n_sites)]
    nodes = {f"gw-{i:05d}": sites[i % n_sites] for i in range(n_nodes)}
    shifted_sites = set(sites[::10])
    stuck_nodes = set(list(nodes)[5::100])
    with tempfile.TemporaryDirectory(prefix="edgeloop-bench-fleet-") as tmp:
        home = Path(tmp)
        env = {
            **os.environ,
            "EDGELOOP_HOME": str(home),
            "EDGELOOP_INTAKE__RETENTION__INTERVAL_S": "0",
        }
        tokens, token_s = _tokens(home, nodes, env)
        port = free_port()
        binary = str(Path(sys.executable).with_name("edgeloop"))
        proc = spawn_logged(
            [
                "taskset",
                "-c",
                "0",
                binary,
                "-q",
                "intake",
                "serve",
                "--port",
                str(port),
            ],
            home / "intake.log",
            env={
                **env,
                "EDGELOOP_INTAKE__QUOTA_REPORTS_PER_S": "100000",
                "EDGELOOP_INTAKE__QUOTA_BYTES_PER_S": "1e9",
            },
        )
        url = f"http://127.0.0.1:{port}"
        result: dict[str, Any] = {
            "nodes": n_nodes,
            "sites": n_sites,
            "days": days,
            "token_s": token_s,
        }
        try:
            wait_http(f"{url}/healthz", proc, "intake", home / "intake.log", 60)
            os.sched_setaffinity(0, {1})
            windows = PlatformSettings().intake.baseline.windows
            onboarding = {
                node: ReportBatch(
                    reports=tuple(
                        _heartbeats(node, site, 0, 1)
                        + [
                            _window(node, site, d, rng, False, False)
                            for d in range(windows)
                        ]
                    )
                )
                .model_dump_json()
                .encode()
                for node, site in nodes.items()
            }
            cpu = _cpu_s(proc.pid)
            at_once = onboard_concurrency or concurrency
            result["onboard_at_once"] = at_once
            lat = asyncio.run(_post_all(url, onboarding, tokens, at_once))
            result["onboard_timeouts"] = int(sum(x > AGENT_TIMEOUT_MS for x in lat))
            result["onboard_cpu_ms_per_node"] = (
                (_cpu_s(proc.pid) - cpu) * 1000 / n_nodes
            )
            result["onboard_p50_ms"] = float(np.percentile(lat, 50))
            result["onboard_p99_ms"] = float(np.percentile(lat, 99))
            day_lat: list[float] = []
            reports = 0
            cpu = _cpu_s(proc.pid)
            start = time.perf_counter()
            for day in range(days):
                batches = {}
                for node, site in nodes.items():
                    batch = _heartbeats(node, site, windows + day, 24) + [
                        _window(
                            node,
                            site,
                            windows + day,
                            rng,
                            day >= 1 and site in shifted_sites,
                            node in stuck_nodes,
                        )
                    ]
                    reports += len(batch)
                    batches[node] = (
                        ReportBatch(reports=tuple(batch)).model_dump_json().encode()
                    )
                day_lat += asyncio.run(_post_all(url, batches, tokens, concurrency))
            elapsed = time.perf_counter() - start
            result["ingest_reports_s"] = reports / elapsed
            result["ingest_cpu_us_per_report"] = (
                (_cpu_s(proc.pid) - cpu) * 1e6 / reports
            )
            result["post_p50_ms"] = float(np.percentile(day_lat, 50))
            result["post_p99_ms"] = float(np.percentile(day_lat, 99))
            store = IntakeStore.from_settings(PlatformSettings(home=home))
            reader = store.create_token("bench-reader", role="reader")
            auth = {"Authorization": f"Bearer {reader}"}
            for path, key in (("/v1/cohorts", "cohorts_ms"), ("/v1/fleet", "fleet_ms")):
                httpx.get(url + path, headers=auth, timeout=120).raise_for_status()
                start = time.perf_counter()
                response = httpx.get(url + path, headers=auth, timeout=120)
                result[key] = (time.perf_counter() - start) * 1000
                result[key.replace("_ms", "_kb")] = len(response.content) / 1024
            policy = TriggerPolicy(window_s=86_400, consecutive=2, cooldown_s=0)
            engine = TriggerEngine(store, home / "triggers.json", policy)
            start = time.perf_counter()
            decisions = engine.evaluate()
            result["trigger_eval_s"] = time.perf_counter() - start
            start = time.perf_counter()
            engine.evaluate()
            result["trigger_idle_ms"] = (time.perf_counter() - start) * 1000
            fired = {d.cohort for d in decisions if d.fired and d.kind == "drift"}
            result["fired_exactly_shifted"] = fired == shifted_sites
            result["fired"] = len(fired)
            result["shifted"] = len(shifted_sites)
            result["plan_from_intake_s"] = _plan_from_intake(url, reader, nodes)
            size = sum(f.stat().st_size for f in home.glob("intake.db*"))
            result["db_kb_per_node_day"] = size / 1024 / (n_nodes * (days + windows))
        except Exception:
            print((home / "intake.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    return result


def render(rows: list[dict[str, Any]], concurrency: int) -> str:
    """The benchmarks.md section."""
    lines = [
        MARK,
        "",
        "Generated by `python -m bench.fleet`. One `edgeloop intake serve` on SQLite pinned to one core;"
        f" simulated agents post from the other, {concurrency} at once, each with its own token from"
        " `intake token create --inventory`. Onboarding: a heartbeat and the windows that complete the"
        " node's drift baseline in one POST. Then per node and day 24 heartbeats and a day window in"
        " one POST; from day 1 a tenth of the sites shift, 1 % of nodes report a stuck sensor.",
        "",
        "| nodes / sites | tokens s | onboarding CPU ms/node | onboarding at once: POST p50 / p99 ms (over 10 s) | ingest reports/s | CPU µs/report | POST p50 / p99 ms | `/v1/cohorts` ms (KB) | `/v1/fleet` ms (KB) | triggers: new / idle | fired = shifted sites | `rollout plan --intake` s | DB KB per node-day |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['nodes']:,} / {r['sites']:,} | {r['token_s']:.1f} | {r['onboard_cpu_ms_per_node']:.1f} | "
            f"{r['onboard_at_once']:,}: {r['onboard_p50_ms']:.0f} / {r['onboard_p99_ms']:.0f} "
            f"({r['onboard_timeouts']}) | {r['ingest_reports_s']:,.0f} | "
            f"{r['ingest_cpu_us_per_report']:.0f} | {r['post_p50_ms']:.0f} / {r['post_p99_ms']:.0f} | "
            f"{r['cohorts_ms']:.0f} ({r['cohorts_kb']:.0f}) | {r['fleet_ms']:.0f} ({r['fleet_kb']:.0f}) | "
            f"{r['trigger_eval_s']:.2f} s / {r['trigger_idle_ms']:.0f} ms | "
            f"{'yes' if r['fired_exactly_shifted'] else 'no'} ({r['fired']} of {r['shifted']}) | "
            f"{r['plan_from_intake_s']:.2f} | {r['db_kb_per_node_day']:.0f} |"
        )
    if len(rows) >= 2:
        small, big = rows[0], rows[-1]
        growth = big["onboard_cpu_ms_per_node"] / max(
            small["onboard_cpu_ms_per_node"], 1e-9
        )
        lines += [
            "",
            f"Onboarding CPU per node from {small['nodes']:,} to {big['nodes']:,} nodes: **{growth:.2f}×**"
            " (1.00× is linear in the fleet).",
        ]
    lines += [
        "",
        "`rollout plan --intake`: the fleet read from the intake over HTTP, a group per site, planned,"
        " rendered and validated (target ≤ 2 s at 10,000 nodes). Onboarding at once: that many"
        " nodes POST their first batch together; the count in brackets is POSTs slower than the"
        " agent's 10 s delivery timeout (target: none).",
        "",
        "Not measured here yet: PostgreSQL, 30 days of history.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000])
    parser.add_argument("--sites", type=int, nargs="+", default=[100])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--onboard-concurrency",
        type=int,
        nargs="+",
        default=None,
        help="nodes onboarding at once, one value or one per --nodes value "
        "(default: --concurrency)",
    )
    opts = parser.parse_args()
    onboard = opts.onboard_concurrency or [opts.concurrency]
    if len(onboard) not in (1, len(opts.nodes)):
        parser.error("--onboard-concurrency: one value, or one per --nodes value")
    onboard = onboard * len(opts.nodes) if len(onboard) == 1 else onboard
    if len(opts.sites) not in (1, len(opts.nodes)):
        parser.error("--sites: one value, or one per --nodes value")
    sites = opts.sites * len(opts.nodes) if len(opts.sites) == 1 else opts.sites
    rows = []
    for n, s, at_once in zip(opts.nodes, sites, onboard, strict=True):
        print(f"fleet of {n:,} nodes at {s:,} sites …", flush=True)
        rows.append(run_fleet(n, s, opts.days, opts.concurrency, at_once))
        print(rows[-1], flush=True)
    section = render(rows, opts.concurrency)
    write_section("bench.fleet", section, DOC)
    print(section)


if __name__ == "__main__":
    main()
