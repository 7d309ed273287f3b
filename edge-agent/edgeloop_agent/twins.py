"""Sensor readings from KubeEdge device-twin updates, one property at a time.

KubeEdge device mappers do not publish a reading with every sensor in it: each
property of a device twin is updated on its own, on the node's broker, as

    topic    $hw/events/device/<device-id>/twin/update
    payload  {"event_id": "", "timestamp": 1700000000000,
              "twin": {"<property>": {"actual": {"value": "2.1",
                                                  "metadata": {"timestamp": 1700000000000}},
                                       "metadata": {"type": "float"}}}}

(``DeviceTwinUpdate`` in KubeEdge's ``edge/pkg/devicetwin/dttype``: values are
strings, times are Unix milliseconds). :class:`TwinAssembler` maps device ->
entity and property -> sensor and assembles one reading per entity: as soon as
every sensor of the model has a fresh value, or once the first pending update
is ``staleness_s`` old. A sensor not updated within the bound is a dropout:
it is scored as missing (``null``) and the score names it, like a gap on
``/predict``.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

TWIN_PREFIX = "$hw/events/device/"
TWIN_SUFFIX = "/twin/update"


@dataclass
class Assembled:
    """One reading put together from twin updates."""

    entity: str
    ts: str
    """ISO 8601 (UTC) of the newest update in it."""
    values: dict[str, float | None]
    stale: tuple[str, ...]
    """Sensors with no update within the staleness bound (sent as null)."""


@dataclass
class _Pending:
    values: dict[str, tuple[float, float]] = field(default_factory=dict)
    """sensor -> (value, epoch seconds of the update)"""
    since: float | None = None
    """Arrival (monotonic) of the first update not yet in a reading."""


class TwinError(ValueError):
    """A twin update that cannot be used (counted as malformed)."""


def device_of(topic: str) -> str | None:
    """The device id of a twin-update topic, or None for any other topic."""
    if not (topic.startswith(TWIN_PREFIX) and topic.endswith(TWIN_SUFFIX)):
        return None
    device = topic[len(TWIN_PREFIX) : -len(TWIN_SUFFIX)]
    return device if device and "/" not in device else None


class TwinAssembler:
    """Per-property twin updates in, whole readings out (thread-safe)."""

    def __init__(
        self,
        devices: dict[str, str],
        properties: dict[str, str],
        staleness_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.devices = devices
        self.properties = properties
        self.staleness_s = staleness_s
        self._clock = clock
        self._pending: dict[str, _Pending] = {}
        self._last: dict[str, dict[str, tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def update(
        self, device: str, payload: bytes, sensors: tuple[str, ...]
    ) -> list[Assembled]:
        """Fold one update in; the readings it completes (usually zero or one).

        Raises:
            TwinError: not a twin update, no usable property, or a value that is
                not a number.
        """
        entity = self.devices.get(device, device) if self.devices else device
        changes = _parse(payload, self.properties, set(sensors))
        with self._lock:
            pending = self._pending.setdefault(entity, _Pending())
            if pending.since is None:
                pending.since = self._clock()
            pending.values.update(changes)
            if set(sensors) <= set(pending.values):
                return [self._emit(entity, sensors)]
        return []

    def due(self, sensors: tuple[str, ...]) -> list[Assembled]:
        """Readings whose first pending update is older than the staleness bound."""
        now = self._clock()
        with self._lock:
            late = [
                entity
                for entity, pending in self._pending.items()
                if pending.since is not None and now - pending.since >= self.staleness_s
            ]
            return [self._emit(entity, sensors) for entity in late]

    def _emit(self, entity: str, sensors: tuple[str, ...]) -> Assembled:
        pending = self._pending.pop(entity)
        previous = self._last.get(entity, {})
        newest = max(at for _, at in pending.values.values())
        values: dict[str, float | None] = {}
        stale = []
        for sensor in sensors:
            found = pending.values.get(sensor) or previous.get(sensor)
            if found is None or newest - found[1] > self.staleness_s:
                values[sensor] = None
                stale.append(sensor)
            else:
                values[sensor] = found[0]
        self._last[entity] = {**previous, **pending.values}
        stamp = datetime.fromtimestamp(newest, UTC).isoformat()
        return Assembled(entity, stamp, values, tuple(stale))


def _parse(
    payload: bytes, properties: dict[str, str], sensors: set[str]
) -> dict[str, tuple[float, float]]:
    """``DeviceTwinUpdate`` JSON -> sensor -> (value, epoch seconds)."""
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TwinError(f"twin update is not JSON ({exc})") from exc
    twin = body.get("twin") if isinstance(body, dict) else None
    if not isinstance(twin, dict) or not twin:
        raise TwinError('twin update must be an object with a non-empty "twin"')
    event_ms = body.get("timestamp")
    out: dict[str, tuple[float, float]] = {}
    for name, prop in twin.items():
        sensor = properties.get(name, name)
        if sensor not in sensors:
            continue  # a property the model does not use (a switch, a state)
        actual = prop.get("actual") if isinstance(prop, dict) else None
        if not isinstance(actual, dict) or "value" not in actual:
            continue  # an expected-only update: a desired value, not a reading
        out[sensor] = (_number(name, actual["value"]), _when(actual, event_ms))
    if not out:
        raise TwinError(
            "twin update has no actual value for a sensor of the model "
            f"(properties: {sorted(twin)[:5]})"
        )
    return out


def _number(name: str, value: object) -> float:
    if isinstance(value, bool):
        raise TwinError(f"twin.{name}.actual.value: expected a number, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]  # strings, as KubeEdge sends them
    except (TypeError, ValueError) as exc:
        raise TwinError(
            f"twin.{name}.actual.value: expected a number, got {value!r}"
        ) from exc
    if not math.isfinite(number):
        raise TwinError(f"twin.{name}.actual.value: {value!r} is not finite")
    return number


def _when(actual: dict[str, object], event_ms: object) -> float:
    """The property's own update time, else the event's, else now (epoch seconds)."""
    meta = actual.get("metadata")
    stamp = meta.get("timestamp") if isinstance(meta, dict) else None
    for candidate in (stamp, event_ms):
        number = isinstance(candidate, int | float) and not isinstance(candidate, bool)
        if number and candidate > 0:  # type: ignore[operator]
            return float(candidate) / 1000.0  # type: ignore[arg-type]
    return time.time()
