"""Onboarding CPU per node in a small and a large fleet, side by side in one run.

#13's growth target: onboarding a node may cost at most 1.1× as much at 10,000
nodes as at 1,000. Two readings of it failed on this shared VM. Rows minutes
apart (1,000 and 10,000 nodes) differed by up to a third with the same code;
and each thousand of one row's onboarding trended either way from run to run
(two back-to-back PostgreSQL 10,000-node runs, first thousand to last: 6.6 →
8.6 and 7.6 → 5.2 ms per node), CPU steal moving the figures, not the fleet.

So the large row's intake gets a second intake beside it holding a small
fleet, both pinned to the same core, and the same new nodes onboard into each
a small round at a time, alternating which goes first: whatever the machine
does in those seconds it does to both, and the ratio of their CPU per node is
the growth. Each intake is a process of its own (its CPU read from /proc),
with its own database: SQLite in its own home, or a second database in the
row's PostgreSQL cluster.

Run on its own (``python -m bench.fleet_growth --db sqlite postgresql
--repeats 3``, as ``make bench`` does) it repeats the comparison with fresh
intakes and judges the target on the median: one comparison moved by several
per cent from repeat to repeat here. :mod:`bench.fleet` runs one comparison
inside its large rows, shown without a verdict.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.doc import DOC, write_section
from bench.fleet_intake import issue_tokens, post_all, spawn_intake
from bench.health_probe import HealthProbe
from bench.load import cpu_s

ROUNDS = 20
"""Rounds of new nodes per side: short enough that the machine's drift within
a round is small, many enough that the CPU clock's 10 ms ticks average out."""


@dataclass(frozen=True)
class Side:
    """One intake in the comparison: its process and how to post batches to it."""

    pid: int
    post: Callable[[dict[str, bytes]], None]
    nodes: int
    """Nodes onboarded before the first round."""


@dataclass
class SideBySide:
    """Each round's CPU per node on both sides (ms), and the fleets' sizes."""

    small_from: int
    large_from: int
    new_nodes: int
    small_ms: list[float]
    large_ms: list[float]

    @property
    def ratio(self) -> float:
        """The large fleet's CPU per new node over the small one's (same nodes)."""
        return sum(self.large_ms) / max(sum(self.small_ms), 1e-9)

    def round_ratios(self) -> list[float]:
        return [
            b / max(a, 1e-9) for a, b in zip(self.small_ms, self.large_ms, strict=True)
        ]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def alternate(
    small: Side, large: Side, new: dict[str, bytes], rounds: int = ROUNDS
) -> SideBySide:
    """Onboard ``new`` into both intakes, a round at a time, taking turns to go first."""
    items = list(new.items())
    size = math.ceil(len(items) / rounds)
    spent: dict[int, list[float]] = {small.pid: [], large.pid: []}
    for r in range(rounds):
        chunk = dict(items[r * size : (r + 1) * size])
        if not chunk:
            break
        for side in (small, large) if r % 2 == 0 else (large, small):
            before = cpu_s(side.pid)
            side.post(chunk)
            spent[side.pid].append((cpu_s(side.pid) - before) * 1000 / len(chunk))
    return SideBySide(
        small.nodes, large.nodes, len(items), spent[small.pid], spent[large.pid]
    )


def _new_database(url: str, name: str) -> str:
    """A fresh database ``name`` in the cluster at ``url``; its URL."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    finally:
        engine.dispose()
    return url.rsplit("/", 1)[0] + "/" + name


@contextmanager
def intake_holding(
    env: dict[str, str],
    database_url: str,
    nodes: dict[str, str],
    fleet: dict[str, bytes],
    concurrency: int,
    database: str = "edgeloop_small",
) -> Iterator[Side]:
    """An intake of its own holding ``fleet`` (onboarded), with tokens for ``nodes``.

    ``nodes`` (node -> site) covers the fleet and the new nodes of the rounds.
    On PostgreSQL its store is a new ``database`` in the cluster at ``database_url``.
    """
    with tempfile.TemporaryDirectory(prefix="edgeloop-bench-growth-") as tmp:
        home = Path(tmp)
        env = {
            **env,
            "EDGELOOP_HOME": str(home),
            "EDGELOOP_INTAKE__DATABASE_URL": _new_database(database_url, database)
            if database_url
            else "",
        }
        tokens, _ = issue_tokens(home, nodes, env)
        proc, url = spawn_intake(home, env)
        # asked as the large intake is (its /healthz answers count in its CPU)
        probe = HealthProbe(int(url.rsplit(":", 1)[1])).start()
        try:
            asyncio.run(post_all(url, fleet, tokens, concurrency))

            def post(batches: dict[str, bytes]) -> None:
                asyncio.run(post_all(url, batches, tokens, concurrency))

            yield Side(proc.pid, post, len(fleet))
        finally:
            probe.stop()
            proc.terminate()
            proc.wait(timeout=30)


def describe(store: str, nodes: int, days: int, found: dict[str, Any]) -> str:
    """One paragraph for docs/benchmarks.md: one row's comparison (no verdict: one sample)."""
    small = sum(found["small_ms"]) / len(found["small_ms"])
    large = sum(found["large_ms"]) / len(found["large_ms"])
    ratios = SideBySide(
        **{k: v for k, v in found.items() if k != "ratio"}
    ).round_ratios()
    new, ratio = found["new_nodes"], found["ratio"]
    return (
        f"{store}, {nodes:,}-node {days}-day row: {new:,} new nodes onboarded, "
        f"{math.ceil(new / len(ratios))} at a time in {len(ratios)} alternating rounds, "
        f"into this row's intake ({found['large_from']:,} → "
        f"{found['large_from'] + new:,} nodes) and into an intake beside it "
        f"({found['small_from']:,} → {found['small_from'] + new:,}): "
        f"{large:.2f} vs {small:.2f} ms CPU per node, **{ratio:.2f}×** "
        f"(per round {min(ratios):.2f}–{max(ratios):.2f}×)."
    )


MARK = "## Onboarding growth: a small and a large fleet side by side, repeated"


def _fleet(n_nodes: int) -> tuple[dict[str, str], dict[str, bytes]]:
    """Nodes (node -> site, 1,000 sites) and each one's onboarding POST body."""
    from bench.fleet import onboarding_bodies
    from edgeloop.core.settings import PlatformSettings

    windows = PlatformSettings().intake.baseline.windows
    sites = [f"site-{s:04d}" for s in range(1000)]
    nodes = {f"gw-{i:05d}": sites[i % len(sites)] for i in range(n_nodes)}
    return nodes, onboarding_bodies(nodes, np.random.default_rng(7), windows)


def compare_once(
    db: str, small: int, large: int, new: int, concurrency: int
) -> SideBySide:
    """One comparison: two fresh intakes (a fresh PostgreSQL cluster for ``postgresql``)."""
    nodes, bodies = _fleet(large + new)
    items = list(bodies.items())
    fresh = dict(items[large:])
    env = {**os.environ, "EDGELOOP_INTAKE__RETENTION__INTERVAL_S": "0"}

    def run(url: str) -> SideBySide:
        def holding(n: int, name: str) -> Any:
            fleet = dict(items[:n])
            return intake_holding(
                env,
                url,
                {node: nodes[node] for node in [*fleet, *fresh]},
                fleet,
                concurrency,
                name,
            )

        with (
            holding(large, "edgeloop_large") as big,
            holding(small, "edgeloop_small") as few,
        ):
            return alternate(few, big, fresh)

    if db == "sqlite":
        return run("")
    from tests.pg_server import postgres_server

    with (
        tempfile.TemporaryDirectory(prefix="edgeloop-bench-pg-") as logs,
        postgres_server(Path(logs)) as url,
    ):
        return run(url)


def render(found: dict[str, list[SideBySide]], concurrency: int) -> str:
    """The benchmarks.md section: every repeat, and the verdict on their median."""
    first = next(iter(found.values()))[0]
    lines = [
        MARK,
        "",
        "Generated by `python -m bench.fleet_growth` (why side by side: the module's"
        " docstring). Per repeat, two fresh `edgeloop intake serve` processes, both"
        " pinned to core 0, each on its own database (SQLite files, or two databases"
        " of a fresh PostgreSQL cluster), each asked `/healthz` every 20 ms as in"
        f" `bench.fleet`: one holding {first.large_from:,} onboarded nodes, one"
        f" {first.small_from:,}; then the same {first.new_nodes:,} new nodes onboard"
        f" into both, {math.ceil(first.new_nodes / len(first.small_ms))} at a time in"
        f" {len(first.small_ms)} rounds, alternating which goes first, a round's POSTs"
        f" in flight together (up to {concurrency}) from core 1. Figures: each"
        " intake's CPU per new node (from /proc).",
        "",
        "The target (#13: onboarding CPU per node ≤ 1.1× from 1,000 to 10,000 nodes)"
        " is judged on the median of the repeats: one comparison moves by several per"
        " cent between repeats on this VM (the spread is in the table), so a single"
        " one near the target says little on its own.",
        "",
        "| store | each repeat: large / small ms CPU per node (ratio) | median ratio | target ≤ 1.10× |",
        "| --- | --- | ---: | :---: |",
    ]
    for db, runs in found.items():
        shown = "; ".join(
            f"{sum(r.large_ms) / len(r.large_ms):.2f} / "
            f"{sum(r.small_ms) / len(r.small_ms):.2f} ({r.ratio:.2f}×)"
            for r in runs
        )
        median = float(np.median([r.ratio for r in runs]))
        verdict = "met" if median <= 1.10 else "missed"
        lines.append(f"| {db} | {shown} | **{median:.2f}×** | {verdict} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--db", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite"]
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--small", type=int, default=500, help="nodes in the small fleet"
    )
    parser.add_argument(
        "--large", type=int, default=8000, help="nodes in the large fleet"
    )
    parser.add_argument(
        "--new", type=int, default=1000, help="new nodes onboarded into both"
    )
    parser.add_argument("--concurrency", type=int, default=64)
    opts = parser.parse_args()
    if (
        not 0 < opts.small < opts.large
        or opts.new < ROUNDS
        or opts.repeats < 1
        or opts.concurrency < 1
    ):
        parser.error(
            "need 0 < --small < --large, --new ≥ 20, --repeats ≥ 1 and --concurrency ≥ 1"
        )
    os.sched_setaffinity(0, {1})  # the intakes are on core 0
    found: dict[str, list[SideBySide]] = {}
    for db in opts.db:
        store = "PostgreSQL" if db == "postgresql" else "SQLite"
        for i in range(opts.repeats):
            print(f"{store}: repeat {i + 1} of {opts.repeats} …", flush=True)
            one = compare_once(db, opts.small, opts.large, opts.new, opts.concurrency)
            found.setdefault(store, []).append(one)
            print(one.as_dict(), flush=True)
            write_section("bench.fleet_growth", render(found, opts.concurrency), DOC)
    print(render(found, opts.concurrency))


if __name__ == "__main__":
    main()
