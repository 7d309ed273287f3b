"""The one implementation of raw sensor readings -> model inputs.

Training (``edgeloop_components``) and the edge agent both call these functions,
so a model is served on exactly the inputs it was trained on: there is no second
implementation that could drift out of step (no training/serving skew).

Pure numpy: no pandas, no I/O, no clock. Missing readings are NaN and are skipped
by every aggregate, because edge sensors drop out and the model must still score.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from edgeloop_agent.contracts.models import FeatureSpec

FloatArray = NDArray[np.float64]

#: Rows of one entity processed at once by :func:`rolling_features`; bounds the
#: temporary arrays to ``chunk * history * sensors`` floats.
_CHUNK_ROWS = 4096


def history_length(spec: FeatureSpec) -> int:
    """Readings per entity needed to compute one feature row (the longest window)."""
    return max(spec.windows)


def window_features(history: FloatArray, spec: FeatureSpec) -> NDArray[np.float32]:
    """Compute model inputs from each entity's most recent readings.

    Args:
        history: ``(batch, history_length(spec), len(spec.sensors))`` readings,
            oldest first, NaN where a reading is missing (or not yet seen).
        spec: which sensors, windows and aggregates, in model-input order.

    Returns:
        ``(batch, len(spec.input_names()))`` float32 model inputs; an aggregate
        over a window with too few valid readings is NaN (XGBoost and its ONNX
        export route NaN down the learned "missing" branch).
    """
    hist = np.asarray(history, dtype=np.float64)
    expected = (history_length(spec), len(spec.sensors))
    if hist.ndim != 3 or hist.shape[1:] != expected:
        raise ValueError(
            f"history must have shape (batch, {expected[0]}, {expected[1]}), "
            f"got {hist.shape}"
        )
    blocks: list[FloatArray] = []
    for window in spec.windows:
        sub = hist[:, hist.shape[1] - window :, :]
        per_agg = _aggregate(sub, tuple(spec.aggregates))
        # Order inside a window block: sensor-major, then aggregate.
        blocks.append(np.stack(per_agg, axis=2).reshape(hist.shape[0], -1))
    return np.concatenate(blocks, axis=1).astype(np.float32)


def rolling_features(readings: FloatArray, spec: FeatureSpec) -> NDArray[np.float32]:
    """Model inputs at every reading of one entity (training-time path).

    Row ``i`` sees readings ``0..i`` only (no look-ahead); before the first
    reading the history is NaN, exactly as an agent's buffer starts empty.

    Args:
        readings: ``(n, len(spec.sensors))`` readings of one entity in time order.
        spec: the feature specification.

    Returns:
        ``(n, len(spec.input_names()))`` float32 model inputs.
    """
    values = np.asarray(readings, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(spec.sensors):
        raise ValueError(
            f"readings must have shape (n, {len(spec.sensors)}), got {values.shape}"
        )
    length = history_length(spec)
    padded = np.concatenate(
        [np.full((length - 1, values.shape[1]), np.nan), values], axis=0
    )
    windows = np.lib.stride_tricks.sliding_window_view(padded, length, axis=0)
    windows = windows.transpose(0, 2, 1)  # (n, length, sensors)
    out = np.empty((values.shape[0], len(spec.input_names())), dtype=np.float32)
    for start in range(0, values.shape[0], _CHUNK_ROWS):
        stop = start + _CHUNK_ROWS
        out[start:stop] = window_features(windows[start:stop], spec)
    return out


def _aggregate(sub: FloatArray, aggregates: tuple[str, ...]) -> list[FloatArray]:
    """Masked aggregates over axis 1 of ``(batch, window, sensors)``."""
    mask = ~np.isnan(sub)
    count = mask.sum(axis=1).astype(np.float64)
    filled = np.where(mask, sub, 0.0)
    total = filled.sum(axis=1)
    has_one = count > 0
    mean = np.divide(total, count, out=np.full_like(total, np.nan), where=has_one)
    results: list[FloatArray] = []
    for name in aggregates:
        if name == "mean":
            results.append(mean)
        elif name == "std":
            centred = np.where(mask, sub - mean[:, None, :], 0.0)
            var = np.divide(
                (centred**2).sum(axis=1),
                count,
                out=np.full_like(total, np.nan),
                where=has_one,
            )
            results.append(np.sqrt(var))
        elif name == "slope":
            results.append(_slope(filled, mask, count))
        elif name == "max":
            peak = np.where(mask, sub, -np.inf).max(axis=1)
            results.append(np.where(has_one, peak, np.nan))
        elif name == "min":
            low = np.where(mask, sub, np.inf).min(axis=1)
            results.append(np.where(has_one, low, np.nan))
        elif name == "last":
            results.append(sub[:, -1, :].copy())
        else:  # pragma: no cover - FeatureSpec validation rejects unknown names
            raise ValueError(f"unknown aggregate {name!r}")
    return results


def _slope(
    filled: FloatArray, mask: NDArray[np.bool_], count: FloatArray
) -> FloatArray:
    """Least-squares slope per reading step over the valid readings."""
    steps = np.arange(filled.shape[1], dtype=np.float64)[None, :, None]
    sum_x = (mask * steps).sum(axis=1)
    sum_xx = (mask * steps**2).sum(axis=1)
    sum_y = filled.sum(axis=1)
    sum_xy = (filled * steps).sum(axis=1)
    denom = count * sum_xx - sum_x**2
    usable = (count >= 2) & (denom > 0)
    slope: FloatArray = np.divide(
        count * sum_xy - sum_x * sum_y,
        denom,
        out=np.full_like(sum_y, np.nan),
        where=usable,
    )
    return slope
