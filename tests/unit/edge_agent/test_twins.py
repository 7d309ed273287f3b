"""KubeEdge device-twin updates (one property per message) assembled into readings."""

from __future__ import annotations

import json

import pytest

from edgeloop_agent.twins import TwinAssembler, TwinError, device_of

SENSORS = ("vibration_rms", "bearing_temp", "flow_rate")
MS = 1_764_547_200_000  # 2025-12-01T00:00:00Z in ms


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def twin(prop: str, value: object, at_ms: int = MS) -> bytes:
    """A DeviceTwinUpdate as KubeEdge's mappers publish it (values as strings)."""
    return json.dumps(
        {
            "event_id": "",
            "timestamp": at_ms,
            "twin": {
                prop: {
                    "actual": {"value": value, "metadata": {"timestamp": at_ms}},
                    "metadata": {"type": "float"},
                }
            },
        }
    ).encode()


def test_the_topic_names_the_device():
    assert device_of("$hw/events/device/pump-07/twin/update") == "pump-07"
    assert device_of("$hw/events/device/pump-07/twin/update/result") is None
    assert device_of("$hw/events/device//twin/update") is None
    assert device_of("edgeloop/s/p/readings") is None


def test_a_reading_is_complete_when_every_sensor_is_updated():
    clock = Clock()
    twins = TwinAssembler(
        {"pump-07-dev": "p7"}, {"vibration": "vibration_rms"}, 30, clock
    )
    assert twins.update("pump-07-dev", twin("vibration", "2.5"), SENSORS) == []
    assert twins.update("pump-07-dev", twin("bearing_temp", "41"), SENSORS) == []
    # a property the model does not use is ignored, not an error
    both = json.loads(twin("flow_rate", "210", MS + 2000))
    both["twin"]["valve_state"] = {"actual": {"value": "open"}}
    (reading,) = twins.update("pump-07-dev", json.dumps(both).encode(), SENSORS)
    assert reading.entity == "p7" and reading.stale == ()
    assert reading.values == {
        "vibration_rms": 2.5,
        "bearing_temp": 41.0,
        "flow_rate": 210.0,
    }
    assert reading.ts == "2025-12-01T00:00:02+00:00"  # the newest update
    assert twins.due(SENSORS) == []


def test_a_sensor_not_updated_within_the_bound_is_a_dropout():
    clock = Clock()
    twins = TwinAssembler({}, {}, 30, clock)
    twins.update("p1", twin("vibration_rms", "2.5"), SENSORS)
    twins.update("p1", twin("bearing_temp", "41"), SENSORS)
    clock.now += 29
    assert twins.due(SENSORS) == []
    clock.now += 1
    (late,) = twins.due(SENSORS)
    assert late.entity == "p1" and late.stale == ("flow_rate",)
    assert late.values["flow_rate"] is None and late.values["vibration_rms"] == 2.5
    # a slower sensor's value still within the bound is used, an old one is not
    twins.update("p1", twin("vibration_rms", "2.6", MS + 10_000), SENSORS)
    twins.update("p1", twin("flow_rate", "200", MS + 10_000), SENSORS)
    clock.now += 30
    (next_one,) = twins.due(SENSORS)
    assert next_one.values == {
        "vibration_rms": 2.6,
        "bearing_temp": 41.0,
        "flow_rate": 200.0,
    }
    twins.update("p1", twin("vibration_rms", "2.7", MS + 60_000), SENSORS)
    clock.now += 30
    (old,) = twins.due(SENSORS)
    assert old.stale == ("bearing_temp", "flow_rate")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff", "not JSON"),
        (b'{"event_id": ""}', 'non-empty "twin"'),
        (
            twin("vibration_rms", "high"),
            "twin.vibration_rms.actual.value: expected a number, got 'high'",
        ),
        (twin("vibration_rms", True), "expected a number"),
        (twin("vibration_rms", "nan"), "is not finite"),
        (
            json.dumps(
                {"twin": {"vibration_rms": {"expected": {"value": "3"}}}}
            ).encode(),
            "no actual value",
        ),
        (twin("valve_state", "open"), "no actual value for a sensor of the model"),
    ],
)
def test_unusable_updates_are_refused_with_the_reason(payload, message):
    twins = TwinAssembler({}, {}, 30, Clock())
    with pytest.raises(
        TwinError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        twins.update("p1", payload, SENSORS)
    assert twins.due(SENSORS) == []
