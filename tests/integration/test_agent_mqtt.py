"""The agent's MQTT bridge against a real mosquitto broker on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edgeloop.demo.processes import spawn_logged
from edgeloop_agent.api.app import create_app
from edgeloop_agent.settings import MqttSettings

from ..conftest import free_port
from ..metrics_text import metric
from ..servers import serve_app
from .test_agent_http import SENSORS, activate, settings_for, wait_for


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        pytest.fail(
            "mosquitto is not installed: `make test` installs it as root, or run `apt-get install mosquitto`"
        )
    return found


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    root = tmp_path_factory.mktemp("mosquitto")
    port = free_port()
    (root / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stdout\n"
    )
    proc = spawn_logged(
        [mosquitto_binary(), "-c", str(root / "mosquitto.conf")],
        root / "log",
        "wb",
    )
    try:
        wait_for(lambda: _accepts(port), what="mosquitto listening")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _accepts(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Listener:
    def __init__(self, port: int, topics: list[str]) -> None:
        self.messages: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"listener-{time.time_ns()}"
        )
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        for topic in topics:
            self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.messages.append((message.topic, json.loads(message.payload)))

    def stop(self):
        self.client.disconnect()  # while the loop runs: it closes the socket
        self.client.loop_stop()


@contextmanager
def _agent_on_broker(
    broker: int, tmp_path: Path, bundle_dir: Path
) -> Iterator[tuple[str, Listener, mqtt.Client]]:
    """An agent serving a copy of the bundle with its MQTT bridge connected,
    a listener on scores and alarms, and a connected publisher."""
    bundle = tmp_path / "b"
    shutil.copytree(bundle_dir, bundle)
    settings = settings_for(tmp_path)
    settings.mqtt = MqttSettings(enabled=True, port=broker, batch_wait_s=0.02)
    listener = Listener(broker, ["edgeloop/+/+/score", "edgeloop/+/+/alarm"])
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="publisher")
    publisher.connect("127.0.0.1", broker)
    publisher.loop_start()
    try:
        with serve_app(create_app(settings), free_port(), lifespan="on") as url:
            activate(url, settings, bundle)
            wait_for(
                lambda: (
                    metric(httpx.get(f"{url}/metrics").text, "edgeloop_mqtt_connected")
                    == 1
                ),
                what="bridge",
            )
            yield url, listener, publisher
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        listener.stop()


def test_readings_in_scores_and_alarms_out_malformed_skipped(
    broker, tmp_path, registry_with_champion
):
    with _agent_on_broker(
        broker, tmp_path, registry_with_champion["run"].bundle_dir
    ) as (url, listener, publisher):
        for i in range(20):
            publisher.publish(
                f"edgeloop/offshore-01/p{i % 2}/readings",
                json.dumps({"ts": f"2026-01-01T00:{i:02d}:00Z", "values": SENSORS}),
                qos=1,
            )
        publisher.publish("edgeloop/offshore-01/p0/readings", b"\xff not json", qos=1)
        publisher.publish(
            "edgeloop/offshore-01/p0/readings",
            json.dumps({"values": {"vibration_rms": 1}}),
            qos=1,
        )
        publisher.publish(
            "edgeloop/offshore-01/p3/readings",
            json.dumps({"values": {**SENSORS, "ambient_temp": None}}),
            qos=1,
        )
        hot = {**SENSORS, "vibration_rms": 14.0, "bearing_temp": 95.0}
        for _ in range(12):
            publisher.publish(
                "edgeloop/offshore-01/p7/readings",
                json.dumps({"values": hot}),
                qos=1,
            )
        wait_for(lambda: len(_scores(listener)) >= 33, what="scores")
        metrics = httpx.get(f"{url}/metrics").text
    scores = _scores(listener)
    assert {t for t, _ in scores} >= {
        "edgeloop/offshore-01/p0/score",
        "edgeloop/offshore-01/p1/score",
    }
    assert all(
        0.0 <= body["score"] <= 1.0 and body["model_version"] == "1"
        for _, body in scores
    )
    assert metric(metrics, "edgeloop_mqtt_malformed_total") == 2
    assert metric(metrics, "edgeloop_mqtt_scored_total") == 33
    (dropout,) = [b for t, b in scores if t == "edgeloop/offshore-01/p3/score"]
    assert dropout["degraded"] is True and dropout["missing"] == ["ambient_temp"]
    assert not any(b["degraded"] for t, b in scores if "/p3/" not in t)
    alarms = [b for t, b in listener.messages if t.endswith("/alarm")]
    assert alarms and all(b["alarm"] for b in alarms)
    assert {b["entity"] for b in alarms} == {"p7"}
    assert len(alarms) == sum(1 for _, b in scores if b["alarm"])
    # the hot pump's alarms name the sensors behind them; scores without alarm do not
    assert all(b["explanation"] for b in alarms)
    named = {item["sensor"] for b in alarms for item in b["explanation"]}
    assert named & {"vibration_rms", "bearing_temp"}, named
    assert not any("explanation" in b for _, b in scores if not b["alarm"])


def _scores(listener: Listener) -> list[tuple[str, dict]]:
    with listener.lock:
        return [(t, b) for t, b in listener.messages if t.endswith("/score")]


def _twin_update(prop: str, value: float) -> bytes:
    """One property, as KubeEdge's EventBus carries a mapper's report (string value, ms)."""
    now_ms = int(time.time() * 1000)
    return json.dumps(
        {
            "event_id": "",
            "timestamp": now_ms,
            "twin": {
                prop: {
                    "actual": {"value": str(value), "metadata": {"timestamp": now_ms}},
                    "metadata": {"type": "float"},
                }
            },
        }
    ).encode()


def test_kubeedge_twin_updates_are_assembled_scored_and_dropouts_named(
    broker, tmp_path, registry_with_champion
):
    bundle = tmp_path / "b"
    shutil.copytree(registry_with_champion["run"].bundle_dir, bundle)
    settings = settings_for(tmp_path)
    settings.mqtt = MqttSettings(
        enabled=True,
        port=broker,
        batch_wait_s=0.02,
        twins=True,
        devices={"pump-07-modbus": "p7", "pump-08-modbus": "p8"},
        properties={"vibration": "vibration_rms"},
        twin_staleness_s=1.0,
    )
    site = settings.node.site
    listener = Listener(
        broker, [f"edgeloop/{site}/+/score", f"edgeloop/{site}/+/alarm"]
    )
    mapper = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="kubeedge-mapper")
    mapper.connect("127.0.0.1", broker)
    mapper.loop_start()
    try:
        with serve_app(create_app(settings), free_port(), lifespan="on") as url:
            activate(url, settings, bundle)

            wait_for(
                lambda: (
                    metric(httpx.get(f"{url}/metrics").text, "edgeloop_mqtt_connected")
                    == 1
                ),
                what="bridge",
            )
            as_properties = {
                ("vibration" if k == "vibration_rms" else k): v
                for k, v in SENSORS.items()
            }
            # pump 7: every property, one message each -> one whole reading
            for prop, value in as_properties.items():
                mapper.publish(
                    "$hw/events/device/pump-07-modbus/twin/update",
                    _twin_update(prop, value),
                    qos=1,
                )
            # pump 8: its flow meter never reports -> a dropout after the bound
            for prop, value in as_properties.items():
                if prop != "flow_rate":
                    mapper.publish(
                        "$hw/events/device/pump-08-modbus/twin/update",
                        _twin_update(prop, value),
                        qos=1,
                    )
            mapper.publish(
                "$hw/events/device/pump-08-modbus/twin/update", b"not json", qos=1
            )
            wait_for(lambda: len(_scores(listener)) >= 2, what="twin scores")
            time.sleep(1.5)  # nothing more arrives: one reading per pump
            metrics = httpx.get(f"{url}/metrics").text
    finally:
        mapper.disconnect()
        mapper.loop_stop()
        listener.stop()
    by_pump = {b["entity"]: b for _, b in _scores(listener)}
    assert len(_scores(listener)) == 2 and set(by_pump) == {"p7", "p8"}
    assert by_pump["p7"]["degraded"] is False and 0 <= by_pump["p7"]["score"] <= 1
    assert by_pump["p8"]["degraded"] is True
    assert by_pump["p8"]["missing"] == ["flow_rate"]
    assert metric(metrics, "edgeloop_mqtt_malformed_total") == 1
    assert metric(metrics, "edgeloop_mqtt_scored_total") == 2


def test_a_gateway_batch_body_is_scored_together_and_answered_in_one_message(
    broker, tmp_path, registry_with_champion
):
    """Several pumps' readings in one message: one score message back, alarms per pump."""
    hot = {**SENSORS, "vibration_rms": 14.0, "bearing_temp": 95.0}
    readings = [
        {"entity": f"p{i % 3}", "ts": f"2026-01-01T00:{i:02d}:00Z", "values": SENSORS}
        for i in range(12)
    ] + [{"entity": "p9", "values": hot} for _ in range(12)]
    broken = [
        {"entity": "", "values": SENSORS},  # no entity
        {"entity": "p4", "values": {"vibration_rms": 1}},  # sensors missing
        "not an object",
    ]
    with _agent_on_broker(
        broker, tmp_path, registry_with_champion["run"].bundle_dir
    ) as (url, listener, publisher):
        publisher.publish(
            "edgeloop/offshore-01/gw1/readings",
            json.dumps({"readings": readings[:5] + broken + readings[5:]}),
            qos=1,
        )
        publisher.publish(
            "edgeloop/offshore-01/gw1/readings", json.dumps({"readings": 3}), qos=1
        )
        wait_for(
            lambda: (
                metric(httpx.get(f"{url}/metrics").text, "edgeloop_mqtt_scored_total")
                == len(readings)
            ),
            what="scored",
        )
        wait_for(lambda: _scores(listener), what="score message")
        metrics = httpx.get(f"{url}/metrics").text
    scores = _scores(listener)
    # one message for the batch, on the gateway's score topic, one result per reading in order
    assert [t for t, _ in scores] == ["edgeloop/offshore-01/gw1/score"]
    body = scores[0][1]
    assert body["model_version"] == "1"
    assert [r["entity"] for r in body["results"]] == [r["entity"] for r in readings]
    assert [r["ts"] for r in body["results"][:12]] == [r["ts"] for r in readings[:12]]
    assert all(0.0 <= r["score"] <= 1.0 for r in body["results"])
    # each broken item and the message without a list counted; the rest scored
    assert metric(metrics, "edgeloop_mqtt_malformed_total") == len(broken) + 1
    alarms = [(t, b) for t, b in listener.messages if t.endswith("/alarm")]
    assert alarms and {t for t, _ in alarms} == {"edgeloop/offshore-01/p9/alarm"}
    assert len(alarms) == sum(r["alarm"] for r in body["results"])
    assert all(b["explanation"] for _, b in alarms)
