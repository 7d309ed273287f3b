"""Parsing raw sensor readings (HTTP ``/predict`` and MQTT share it).

A reading names every sensor of the active model. ``null`` means the sensor
sent nothing (a dropout, scored as missing); NaN/Infinity, text, unknown and
missing names are refused with a message naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edgeloop_agent.errors import InputError

_NUMBERS = frozenset((int, float))


def parse_values(
    values: Any, sensors: Sequence[str], where: str = "values"
) -> NDArray[np.float64]:
    """One reading's sensor values in model order; NaN for ``null``.

    The common reading (every sensor, finite numbers, nothing else) is taken
    in one pass; anything else goes through the checks that name the field.
    """
    if type(values) is dict and len(values) == len(sensors):
        try:
            row = [values[name] for name in sensors]
        except KeyError:
            pass
        else:
            if set(map(type, row)) <= _NUMBERS and all(map(_finite, row)):
                return np.array(row, dtype=np.float64)
    if not isinstance(values, Mapping):
        raise InputError(f"{where}: expected an object of sensor values")
    unknown = sorted(set(values) - set(sensors))
    if unknown:
        raise InputError(
            f"{where}.{unknown[0]}: unknown sensor; the model takes {', '.join(sensors)}"
        )
    missing = [s for s in sensors if s not in values]
    if missing:
        raise InputError(
            f"{where}.{missing[0]}: missing sensor (send null for a dropout)"
        )
    out = np.empty(len(sensors), dtype=np.float64)
    for i, name in enumerate(sensors):
        value = values[name]
        if value is None:
            out[i] = np.nan
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(
                f"{where}.{name}: expected a number or null, got {type(value).__name__}"
            )
        if not _finite(value):
            raise InputError(
                f"{where}.{name}: must be finite (NaN/Infinity are not readings; send null)"
            )
        out[i] = float(value)
    return out


def _finite(value: float) -> bool:
    """``math.isfinite``, False for an integer too large for a float (not an error)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def parse_entity(value: Any, where: str = "entity") -> str:
    """A non-empty entity id of at most 253 characters."""
    if not isinstance(value, str) or not value or len(value) > 253:
        raise InputError(
            f"{where}: expected a non-empty string of at most 253 characters"
        )
    return value
