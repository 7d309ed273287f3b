"""Drift against each node's own baseline (pure; the intake keeps the state).

Why not the agent's PSI alone: the agent compares a window with the bundle's
*fleet-wide* reference bins. A gateway sees a handful of pumps in one climate
and whatever load regimes they run in today, so that PSI is high everywhere,
all the time, and cannot tell a changed site from an ordinary one (measured:
node-level PSI against the training reference flags about half the inputs on
every node, shifted or not).

So the intake builds a baseline per node and model version from the node's
first ``windows`` windows on that version (same bins; counts add up), and
learns how much each input normally moves from window to window there
(leave-one-out PSI of each baseline window against the others: load regimes
and pump wear make that large for some inputs, small for others). After that,
an input of a window counts as drifted when its PSI against the baseline is
above ``max(psi_floor, margin * typical)``, where ``typical`` is the larger of
the node's own wobble and the wobble of that input across the fleet's nodes
(a quantile over every ready baseline of the version): three windows of one
node rarely see every load regime, the fleet has. A site whose ambient temperature
jumps moves its temperature inputs by ~100x their typical wobble; a pump
changing load regime moves its load inputs by a few times theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgeloop.core.settings import BaselinePolicy
from edgeloop_agent.contracts import DriftWindow
from edgeloop_agent.features import psi
from edgeloop_agent.features.sketch import PSI_EPSILON

__all__ = [
    "Baseline",
    "BaselinePolicy",
    "Judgement",
    "Pooled",
    "judge",
    "observe",
    "pooled_typical",
]


@dataclass
class Baseline:
    """One node's baseline on one model version (JSON-serialisable state)."""

    windows: list[dict[str, list[int]]] = field(default_factory=list)
    """Per-input counts of each window that built the baseline."""
    typical: dict[str, float] = field(default_factory=dict)
    """Leave-one-out PSI per input, set once the baseline is complete."""
    _totals: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def ready(self) -> bool:
        """True once the baseline is complete and windows can be judged."""
        return bool(self.typical)

    def totals(self) -> dict[str, np.ndarray]:
        """Summed counts per input (cached once the baseline is complete)."""
        if self.ready() and self._totals is not None:
            return self._totals
        out: dict[str, np.ndarray] = {}
        for counts in self.windows:
            for name, values in counts.items():
                arr = np.asarray(values, dtype=np.float64)
                out[name] = out[name] + arr if name in out else arr
        if self.ready():
            self._totals = out
        return out

    def to_json(self) -> dict[str, object]:
        """State as stored by the intake."""
        return {"windows": self.windows, "typical": self.typical}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Baseline:
        """Inverse of :meth:`to_json`."""
        windows = data.get("windows", [])
        typical = data.get("typical", {})
        assert isinstance(windows, list) and isinstance(typical, dict)
        return cls(windows=windows, typical={k: float(v) for k, v in typical.items()})


@dataclass(frozen=True)
class Judgement:
    """A window judged against its node's baseline."""

    drifted_share: float | None
    """Share of inputs drifted; None while the baseline is still being built."""
    drifted: tuple[str, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)
    """PSI against the baseline per input (empty while building)."""


def window_counts(window: DriftWindow) -> dict[str, list[int]]:
    """Per-input counts of a window."""
    return {f.name: list(f.counts) for f in window.features}


def observe(
    baseline: Baseline,
    window: DriftWindow,
    policy: BaselinePolicy,
    pooled: dict[str, float] | None = None,
) -> Judgement:
    """Add a window to a baseline still being built, or judge it against a ready one.

    ``pooled``: each input's wobble across the fleet (see :func:`pooled_typical`);
    the larger of it and the node's own is used.
    """
    counts = window_counts(window)
    if not baseline.ready():
        baseline.windows.append(counts)
        if len(baseline.windows) >= policy.windows:
            baseline.typical = _typical(baseline)
        return Judgement(drifted_share=None)
    typical = {
        name: max(value, (pooled or {}).get(name, 0.0))
        for name, value in baseline.typical.items()
    }
    return judge(baseline.totals(), typical, counts, policy)


@dataclass(frozen=True)
class Pooled:
    """The fleet's wobble per input, and the nodes left out of it."""

    typical: dict[str, float]
    outliers: tuple[str, ...] = ()


def pooled_typical(
    typicals: dict[str, dict[str, float]], policy: BaselinePolicy
) -> Pooled:
    """Per input, a quantile of its wobble over the nodes' baselines, robustly.

    One node whose windows jump between extreme bins has a huge wobble; taken
    into a 0.9 quantile over a few nodes it would set every node's threshold
    and blind drift detection on the whole version. So: with fewer than
    ``pooled_min_nodes`` ready baselines nothing is pooled (each node uses its
    own wobble), and a node whose wobble on any input is more than
    ``pooled_outlier_factor`` times that input's median across nodes is left
    out (and listed).
    """
    if len(typicals) < policy.pooled_min_nodes:
        return Pooled({})
    names = sorted({name for t in typicals.values() for name in t})
    medians = {
        name: float(np.median([t.get(name, 0.0) for t in typicals.values()]))
        for name in names
    }
    outliers = tuple(
        sorted(
            node
            for node, t in typicals.items()
            if any(
                t.get(name, 0.0)
                > policy.pooled_outlier_factor * max(medians[name], PSI_EPSILON)
                for name in names
            )
        )
    )
    kept = [t for node, t in typicals.items() if node not in outliers]
    if len(kept) < policy.pooled_min_nodes:
        return Pooled({}, outliers)
    return Pooled(
        {
            name: float(
                np.quantile([t.get(name, 0.0) for t in kept], policy.pooled_quantile)
            )
            for name in names
        },
        outliers,
    )


def judge(
    totals: dict[str, np.ndarray],
    typical: dict[str, float],
    counts: dict[str, list[int]],
    policy: BaselinePolicy,
) -> Judgement:
    """Which inputs of ``counts`` moved beyond their usual wobble around ``totals``.

    All inputs in one vectorised PSI: count vectors are zero-padded to the
    widest, and a bin empty on both sides adds exactly nothing to PSI.
    """
    names = [n for n in counts if n in totals]
    if not names:
        return Judgement(drifted_share=0.0)
    width = max(max(len(totals[n]), len(counts[n])) for n in names)
    ref = np.zeros((len(names), width))
    cur = np.zeros((len(names), width))
    for i, name in enumerate(names):
        ref[i, : len(totals[name])] = totals[name]
        cur[i, : len(counts[name])] = counts[name]
    scores = _psi_rows(ref, cur)
    limits = np.array(
        [max(policy.psi_floor, policy.margin * typical.get(n, 0.0)) for n in names]
    )
    drifted = tuple(n for n, hit in zip(names, scores > limits, strict=True) if hit)
    return Judgement(
        drifted_share=len(drifted) / len(names),
        drifted=drifted,
        scores={n: round(float(v), 4) for n, v in zip(names, scores, strict=True)},
    )


def _psi_rows(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """PSI of each row pair, as :func:`edgeloop_agent.features.psi` computes it."""
    ref_sum = ref.sum(axis=1, keepdims=True)
    cur_sum = cur.sum(axis=1, keepdims=True)
    p = ref / np.where(ref_sum > 0, ref_sum, 1) + PSI_EPSILON
    q = cur / np.where(cur_sum > 0, cur_sum, 1) + PSI_EPSILON
    out = ((q - p) * np.log(q / p)).sum(axis=1)
    # an empty side means "no evidence", as in the scalar psi
    return np.where((ref_sum[:, 0] > 0) & (cur_sum[:, 0] > 0), out, 0.0)


def _typical(baseline: Baseline) -> dict[str, float]:
    totals = baseline.totals()
    out: dict[str, float] = {}
    for name, total in totals.items():
        worst = 0.0
        for counts in baseline.windows:
            one = np.asarray(counts.get(name, []), dtype=np.float64)
            if one.shape != total.shape:
                continue
            worst = max(worst, psi(total - one, one))
        out[name] = round(worst, 6)
    return out
