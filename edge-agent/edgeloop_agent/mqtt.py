"""MQTT bridge: readings in from the site broker, scores and alarms back out.

Topic conventions (configurable, see ``MqttSettings``)::

    edgeloop/<site>/<entity>/readings   in   {"ts": "...", "values": {"vibration_rms": 2.1, ...}}
    edgeloop/<site>/<entity>/score      out  {"ts", "entity", "score", "alarm", "degraded", "model_version"} (+ "missing", + "explanation" on alarms)
    edgeloop/<site>/<entity>/alarm      out  same body, only when score >= the bundle's threshold

KubeEdge device mappers publish differently: one twin property per message on
``$hw/events/device/<device-id>/twin/update`` (KubeEdge's EventBus format).
With ``mqtt.twins`` on, those are assembled into readings per device
(:mod:`edgeloop_agent.twins`) and scored like the others, with sensors that
were not updated within ``twin_staleness_s`` as dropouts. Messages are queued
by paho's network thread and scored by one worker thread in micro-batches
across pumps; a malformed payload is counted, logged and skipped and never
stops the loop.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from datetime import datetime
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edgeloop_agent.errors import AgentError, ContractError
from edgeloop_agent.readings import parse_values
from edgeloop_agent.service import ScoringService, missing_sensors
from edgeloop_agent.settings import AgentSettings
from edgeloop_agent.twins import TwinAssembler, TwinError, device_of

log = logging.getLogger(__name__)


class MqttBridge:
    """Subscribes to readings and publishes scores; runs on its own threads."""

    def __init__(self, settings: AgentSettings, service: ScoringService) -> None:
        self.settings = settings.mqtt
        self.node = settings.node
        self.service = service
        self._queue: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=100_000)
        self._stop = threading.Event()
        self._worker = threading.Thread(
            target=self._run, name="mqtt-scorer", daemon=True
        )
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"edgeloop-agent-{self.node.id}",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.twins = TwinAssembler(
            self.settings.devices,
            self.settings.properties,
            self.settings.twin_staleness_s,
        )

    def start(self) -> None:
        """Connect (retrying in the background if the broker is down) and start scoring."""
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=30)
        self.client.loop_start()
        self._worker.start()

    def stop(self) -> None:
        """Stop scoring and disconnect."""
        self._stop.set()
        self._worker.join(timeout=5)
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT connect refused: %s", reason)
            return
        client.subscribe(self.settings.readings_topic, qos=self.settings.qos)
        if self.settings.twins:
            client.subscribe(self.settings.twin_topic, qos=self.settings.qos)
        self.service.metrics.set("edgeloop_mqtt_connected", 1)

    def _on_message(
        self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage
    ) -> None:
        try:
            self._queue.put_nowait((message.topic, bytes(message.payload)))
        except queue.Full:
            self.service.metrics.inc("edgeloop_mqtt_dropped_total")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self.settings.twins:
                    self._score([])  # readings whose twin updates went stale
                continue
            batch = [first]
            deadline = time.monotonic() + self.settings.batch_wait_s
            while len(batch) < self.settings.batch_max:
                remaining = deadline - time.monotonic()
                try:
                    batch.append(
                        self._queue.get(timeout=max(0.0, remaining))
                        if remaining > 0
                        else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
            self._score(batch)

    def _score(self, batch: list[tuple[str, bytes]]) -> None:
        model = self.service.active
        if model is None:
            self.service.metrics.inc("edgeloop_mqtt_unscored_total", by=len(batch))
            return
        sensors = model.manifest.features.sensors
        entities, sites, stamps, rows = [], [], [], []
        for topic, payload in batch:
            try:
                found = self._readings(topic, payload, sensors)
            except (AgentError, ContractError, ValueError) as exc:
                self.service.metrics.inc("edgeloop_mqtt_malformed_total")
                log.warning("skipping malformed MQTT message on %s: %s", topic, exc)
                continue
            for site, entity, stamp, values in found:
                entities.append(entity)
                sites.append(site)
                stamps.append(stamp)
                rows.append(values)
        if self.settings.twins:
            for late in self.twins.due(sensors):
                entities.append(late.entity)
                sites.append(self.node.site)
                stamps.append(late.ts)
                rows.append(parse_values(late.values, sensors))
        if not rows:
            return
        try:
            scored = self.service.score_readings(
                entities, np.stack(rows), [_epoch(s) for s in stamps]
            )
        except (AgentError, ContractError) as exc:
            log.error("MQTT batch not scored: %s", exc)
            return
        self.service.metrics.inc("edgeloop_mqtt_scored_total", by=len(rows))
        if scored.model.scorer is None:
            return  # monitor-only: the readings fed the windows; there is no score to send
        gaps = missing_sensors(np.stack(rows), scored.model.manifest.features.sensors)
        for row, (site, entity, stamp, score, alarm, gap) in enumerate(
            zip(
                sites, entities, stamps, scored.scores, scored.alarms, gaps, strict=True
            )
        ):
            body = json.dumps(
                {
                    "ts": stamp,
                    "entity": entity,
                    "score": round(float(score), 6),
                    "alarm": bool(alarm),
                    "degraded": bool(gap),
                    "model_version": scored.model.version,
                }
                | ({"missing": list(gap)} if gap else {})
                | ({"explanation": scored.explanation(row)} if alarm else {})
            )
            self.client.publish(
                self.settings.score_topic.format(site=site, entity=entity),
                body,
                qos=self.settings.qos,
            )
            if alarm:
                self.client.publish(
                    self.settings.alarm_topic.format(site=site, entity=entity),
                    body,
                    qos=self.settings.qos,
                )

    def _readings(
        self, topic: str, payload: bytes, sensors: tuple[str, ...]
    ) -> list[tuple[str, str, Any, np.ndarray]]:
        """Readings in one message: edgeloop's own (one), or a twin update's (0 or 1)."""
        device = device_of(topic) if self.settings.twins else None
        if device is None:
            return [_parse(topic, payload, sensors)]
        try:
            done = self.twins.update(device, payload, sensors)
        except TwinError as exc:
            raise ValueError(str(exc)) from exc
        return [
            (self.node.site, a.entity, a.ts, parse_values(a.values, sensors))
            for a in done
        ]


def _epoch(stamp: Any) -> float | None:
    """A reading's ``ts`` as epoch seconds when it is ISO 8601 with an offset, else None."""
    if not isinstance(stamp, str):
        return None
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return when.timestamp() if when.tzinfo is not None else None


def _parse(
    topic: str, payload: bytes, sensors: tuple[str, ...]
) -> tuple[str, str, Any, np.ndarray]:
    """``edgeloop/<site>/<entity>/readings`` + JSON body -> (site, entity, ts, values)."""
    levels = topic.split("/")
    if len(levels) < 4 or not levels[-2] or not levels[-3]:
        raise ValueError("topic must be <prefix>/<site>/<entity>/readings")
    site, entity = levels[-3], levels[-2]
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"payload is not JSON ({exc})") from exc
    if not isinstance(body, dict) or "values" not in body:
        raise ValueError('payload must be an object with "values"')
    return site, entity, body.get("ts"), parse_values(body["values"], sensors)
