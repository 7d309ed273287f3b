"""The one definition of a label: a failure of the same entity within the horizon.

Training (``validation``: labels from the maintenance log) and label ingestion
on the platform (``edgeloop.monitor.labels``: alarm precision/recall from
delayed work orders) both call :func:`failure_within_horizon`, so a reading is
judged by the same rule when the model learns and when it is scored live.
"""

from __future__ import annotations

import numpy as np


def failure_within_horizon(
    entities: np.ndarray,
    times: np.ndarray,
    failure_entities: np.ndarray,
    failure_times: np.ndarray,
    horizon: np.timedelta64,
) -> np.ndarray:
    """1 where the same entity fails in ``(time, time + horizon]``, else 0."""
    label = np.zeros(len(times), dtype=np.int8)
    for entity in np.unique(failure_entities):
        rows = np.flatnonzero(entities == entity)
        if not len(rows):
            continue
        fails = np.sort(failure_times[failure_entities == entity])
        t = times[rows]
        nxt = np.searchsorted(fails, t, side="right")
        has_next = nxt < len(fails)
        gap = np.where(
            has_next, fails[np.minimum(nxt, len(fails) - 1)] - t, horizon + 1
        )
        label[rows] = (has_next & (gap <= horizon)).astype(np.int8)
    return label
