"""Histogram sketches over reference bins, and PSI between two of them.

The training pipeline computes the reference counts with :func:`bin_counts`;
the agent computes window counts with the same function, so both sides bin a
value identically. Counts are plain integers: sketches from many windows or
nodes merge by addition.

Pure numpy, no I/O.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

#: Quantiles that set the reference bin edges (deciles).
REFERENCE_QUANTILES = np.linspace(0.0, 1.0, 11)
#: Added to every bin share before PSI so empty bins do not make it infinite.
PSI_EPSILON = 1e-4


def reference_edges(values: NDArray[np.float64]) -> tuple[float, ...]:
    """Bin edges from training quantiles; degenerate columns get one unit-wide bin."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (-0.5, 0.5)
    edges = np.unique(np.quantile(finite, REFERENCE_QUANTILES))
    if edges.size < 2:
        centre = float(edges[0])
        return (centre - 0.5, centre + 0.5)
    return tuple(float(e) for e in edges)


def bin_index(
    values: NDArray[np.float64], edges: NDArray[np.float64]
) -> NDArray[np.intp]:
    """Bin of each value; below the first edge -> bin 0, above the last -> last bin."""
    inner = edges[1:-1]
    return np.searchsorted(inner, values, side="right")


def bin_counts(
    values: NDArray[np.float64], edges: tuple[float, ...]
) -> tuple[list[int], int]:
    """(counts per bin, NaN count) of one column."""
    arr = np.asarray(values, dtype=np.float64)
    nan = np.isnan(arr)
    idx = bin_index(arr[~nan], np.asarray(edges))
    counts = np.bincount(idx, minlength=len(edges) - 1)
    return [int(c) for c in counts], int(nan.sum())


def psi(reference: NDArray[np.float64], current: NDArray[np.float64]) -> float:
    """Population stability index between two count vectors over the same bins."""
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.sum() <= 0 or cur.sum() <= 0:
        return 0.0
    p = ref / ref.sum() + PSI_EPSILON
    q = cur / cur.sum() + PSI_EPSILON
    return float(np.sum((q - p) * np.log(q / p)))
