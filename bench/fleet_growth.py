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
"""

from __future__ import annotations

import asyncio
import math
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.fleet_intake import cpu_s, issue_tokens, post_all, spawn_intake

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


def _second_database(url: str) -> str:
    """A fresh database in the row's PostgreSQL cluster; its URL."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("CREATE DATABASE edgeloop_small"))
    finally:
        engine.dispose()
    return url.rsplit("/", 1)[0] + "/edgeloop_small"


@contextmanager
def small_intake(
    env: dict[str, str],
    database_url: str,
    nodes: dict[str, str],
    fleet: dict[str, bytes],
    concurrency: int,
) -> Iterator[Side]:
    """An intake of its own holding ``fleet`` (onboarded), with tokens for ``nodes``.

    ``nodes`` (node -> site) covers the fleet and the new nodes of the rounds.
    """
    with tempfile.TemporaryDirectory(prefix="edgeloop-bench-small-") as tmp:
        home = Path(tmp)
        env = {
            **env,
            "EDGELOOP_HOME": str(home),
            "EDGELOOP_INTAKE__DATABASE_URL": _second_database(database_url)
            if database_url
            else "",
        }
        tokens, _ = issue_tokens(home, nodes, env)
        proc, url = spawn_intake(home, env)
        try:
            asyncio.run(post_all(url, fleet, tokens, concurrency))

            def post(batches: dict[str, bytes]) -> None:
                asyncio.run(post_all(url, batches, tokens, concurrency))

            yield Side(proc.pid, post, len(fleet))
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def describe(store: str, nodes: int, days: int, found: dict[str, Any]) -> str:
    """One paragraph for docs/benchmarks.md: the figures and the 1.1× verdict."""
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
        f"(target ≤ 1.10×: {'met' if ratio <= 1.10 else 'missed'}; per round "
        f"{min(ratios):.2f}–{max(ratios):.2f}×)."
    )
