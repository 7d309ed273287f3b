"""Sensor dropouts: training sees them, and a gate checks the model survives them.

Gateways lose sensors every day (a loose connector, a flat battery, a mapper
restart) and send ``null``. The agent then computes the sensor's inputs from
the readings it has: one missing reading leaves the sensor's ``last`` input
missing, a dead sensor leaves every input of it missing (NaN, which XGBoost
routes down its learned "missing" branch). A model trained on gap-free data
never learned those branches: one missing sensor made every healthy row alarm.

- :func:`augment`: copies of a share of the training rows with one sensor
  dropped, half as a single missing reading, half as a dead sensor; sensors
  are drawn by their own dropout rate in the data (plus an even floor, so a
  sensor that never dropped in the history is still covered).
- :func:`false_alarm_rates`: the holdout false-alarm rate with every sensor
  present and with each sensor dead in turn, for the ``dropout`` gate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeloop_agent.contracts import FeatureSpec


def sensor_inputs(spec: FeatureSpec) -> dict[str, list[int]]:
    """Input columns computed from each sensor."""
    names = spec.input_names()
    return {
        sensor: [i for i, name in enumerate(names) if name.startswith(f"{sensor}__")]
        for sensor in spec.sensors
    }


def last_inputs(spec: FeatureSpec) -> dict[str, list[int]]:
    """Each sensor's ``last`` inputs (empty when the spec has no ``last``)."""
    names = spec.input_names()
    return {
        sensor: [
            i for i, name in enumerate(names) if name.startswith(f"{sensor}__last_")
        ]
        for sensor in spec.sensors
    }


def observed_rates(x: np.ndarray, spec: FeatureSpec) -> dict[str, float]:
    """Share of rows where each sensor's latest reading was missing."""
    last = last_inputs(spec)
    every = sensor_inputs(spec)
    return {
        sensor: float(np.isnan(x[:, last[sensor] or every[sensor]]).any(axis=1).mean())
        if len(x)
        else 0.0
        for sensor in spec.sensors
    }


def augment(
    x: np.ndarray, y: np.ndarray, spec: FeatureSpec, share: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``x``/``y`` plus ``share × len(x)`` copies with one sensor dropped each."""
    count = round(share * len(x))
    if count == 0 or not len(x):
        return x, y
    rng = np.random.default_rng(seed)
    sensors = list(spec.sensors)
    rates = observed_rates(x, spec)
    weights = np.array([rates[s] for s in sensors]) + 1.0 / len(sensors)
    picked = rng.choice(len(sensors), size=count, p=weights / weights.sum())
    rows = rng.choice(len(x), size=count, replace=count > len(x))
    dead = rng.random(count) < 0.5
    every, last = sensor_inputs(spec), last_inputs(spec)
    copies = x[rows].copy()
    for i, sensor in enumerate(sensors):
        mine = picked == i
        whole = mine & (dead | (not last[sensor]))
        columns = np.asarray(every[sensor], dtype=np.intp)
        copies[np.ix_(np.flatnonzero(whole), columns)] = np.nan
        single = mine & ~whole
        latest = np.asarray(last[sensor], dtype=np.intp)
        copies[np.ix_(np.flatnonzero(single), latest)] = np.nan
    return np.concatenate([x, copies]), np.concatenate([y, y[rows]])


def false_alarm_rates(
    predict: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    threshold: float,
    spec: FeatureSpec,
) -> dict[str, object]:
    """Share of healthy holdout rows alarming: all sensors, then each sensor dead."""
    healthy = np.asarray(y) == 0
    if not healthy.any():
        return {"full": None, "by_sensor": {}}
    x = x[healthy]

    def rate(inputs: np.ndarray) -> float:
        return float((predict(inputs) >= threshold).mean())

    by_sensor = {}
    for sensor, columns in sensor_inputs(spec).items():
        dropped = x.copy()
        dropped[:, columns] = np.nan
        by_sensor[sensor] = rate(dropped)
    return {"full": rate(x), "by_sensor": by_sensor, "rows": int(len(x))}
