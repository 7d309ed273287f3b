"""MQTT bridge: readings in from the site broker, scores and alarms back out.

Topic conventions (configurable, see ``MqttSettings``)::

    edgeloop/<site>/<entity>/readings   in   {"ts": "...", "values": {"vibration_rms": 2.1, ...}}
    edgeloop/<site>/<entity>/score      out  {"ts", "entity", "score", "alarm", "degraded", "model_version"} (+ "missing", + "explanation" on alarms)
    edgeloop/<site>/<entity>/alarm      out  same body, only when score >= the bundle's threshold

A gateway that collects many pumps may send several readings per message
(``{"readings": [{"entity", "ts", "values"}, ...]}`` on
``edgeloop/<site>/<gateway>/readings``); their scores come back as one
message on the gateway's score topic (``{"model_version", "results": [...]}``,
one item per reading, in order) and alarms per pump as above. Per-message
work (JSON, paho, the broker) dominated one reading per message; a batch body
shares it among its readings (docs/benchmarks.md, MQTT ingestion).

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

import logging
import queue
import threading
import time
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edgeloop_agent.errors import AgentError, ContractError
from edgeloop_agent.readings import parse_entity, parse_values
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
        found: list[Reading] = []
        for topic, payload in batch:
            try:
                found += self._readings(topic, payload, sensors)
            except (AgentError, ContractError, ValueError) as exc:
                self.service.metrics.inc("edgeloop_mqtt_malformed_total")
                log.warning("skipping malformed MQTT message on %s: %s", topic, exc)
        if self.settings.twins:
            for late in self.twins.due(sensors):
                found.append(
                    Reading(
                        self.node.site,
                        late.entity,
                        late.ts,
                        parse_values(late.values, sensors),
                    )
                )
        limit = self.service.settings.scoring.max_batch_rows
        for start in range(0, len(found), limit):
            self._score_rows(found[start : start + limit])

    def _score_rows(self, found: list[Reading]) -> None:
        """Score readings together; publish each one's score (or its message's)."""
        rows = np.stack([r.values for r in found])
        try:
            scored = self.service.score_readings(
                [r.entity for r in found], rows, [_epoch(r.ts) for r in found]
            )
        except (AgentError, ContractError) as exc:
            log.error("MQTT batch not scored: %s", exc)
            return
        self.service.metrics.inc("edgeloop_mqtt_scored_total", by=len(rows))
        if scored.model.scorer is None:
            return  # monitor-only: the readings fed the windows; there is no score to send
        gaps = missing_sensors(rows, scored.model.manifest.features.sensors)
        batched: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row, (reading, score, alarm, gap) in enumerate(
            zip(found, scored.scores, scored.alarms, gaps, strict=True)
        ):
            result = {
                "ts": reading.ts,
                "entity": reading.entity,
                "score": round(float(score), 6),
                "alarm": bool(alarm),
                "degraded": bool(gap),
                "model_version": scored.model.version,
            }
            if gap:
                result["missing"] = list(gap)
            if alarm:
                result["explanation"] = scored.explanation(row)
            body = None
            if reading.gateway is None:
                body = orjson.dumps(result)
                self._publish(
                    self.settings.score_topic, reading.site, reading.entity, body
                )
            else:
                batched.setdefault((reading.site, reading.gateway), []).append(result)
            if alarm:
                body = body or orjson.dumps(result)
                self._publish(
                    self.settings.alarm_topic, reading.site, reading.entity, body
                )
        for (site, gateway), results in batched.items():
            body = orjson.dumps(
                {"model_version": scored.model.version, "results": results}
            )
            self._publish(self.settings.score_topic, site, gateway, body)

    def _publish(self, topic: str, site: str, entity: str, body: bytes) -> None:
        self.client.publish(
            topic.format(site=site, entity=entity), body, qos=self.settings.qos
        )

    def _readings(
        self, topic: str, payload: bytes, sensors: tuple[str, ...]
    ) -> list[Reading]:
        """Readings in one message: edgeloop's own (one or a batch), or a twin update's (0 or 1)."""
        device = device_of(topic) if self.settings.twins else None
        if device is None:
            readings, refused = _parse(topic, payload, sensors)
            for where, exc in refused:  # the rest of the batch is scored
                self.service.metrics.inc("edgeloop_mqtt_malformed_total")
                log.warning(
                    "skipping %s of the MQTT message on %s: %s", where, topic, exc
                )
            return readings
        try:
            done = self.twins.update(device, payload, sensors)
        except TwinError as exc:
            raise ValueError(str(exc)) from exc
        return [
            Reading(self.node.site, a.entity, a.ts, parse_values(a.values, sensors))
            for a in done
        ]


class Reading(NamedTuple):
    """One reading taken from MQTT, and where its score goes."""

    site: str
    entity: str
    ts: Any
    values: np.ndarray
    gateway: str | None = None
    """The topic's entity level when the reading came in a batch body: its
    score is published with the batch's others on that level's score topic."""


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
) -> tuple[list[Reading], list[tuple[str, Exception]]]:
    """``edgeloop/<site>/<entity>/readings`` + JSON body -> readings, and the refused ones.

    A body with ``values`` is one reading of the topic's entity; a body with
    ``readings`` is a batch, each item naming its entity. A broken item is
    refused on its own (with where it was), the others are kept.
    """
    levels = topic.split("/")
    if len(levels) < 4 or not levels[-2] or not levels[-3]:
        raise ValueError("topic must be <prefix>/<site>/<entity>/readings")
    site, entity = levels[-3], levels[-2]
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"payload is not JSON ({exc})") from exc
    if isinstance(body, dict) and "values" in body:
        return [
            Reading(site, entity, body.get("ts"), parse_values(body["values"], sensors))
        ], []
    if not isinstance(body, dict) or not isinstance(body.get("readings"), list):
        raise ValueError('payload must be an object with "values" or a "readings" list')
    readings: list[Reading] = []
    refused: list[tuple[str, Exception]] = []
    for i, item in enumerate(body["readings"]):
        where = f"readings[{i}]"
        try:
            if not isinstance(item, dict) or "values" not in item:
                raise ValueError(
                    f'{where}: expected an object with "entity" and "values"'
                )
            readings.append(
                Reading(
                    site,
                    parse_entity(item.get("entity"), f"{where}.entity"),
                    item.get("ts"),
                    parse_values(item["values"], sensors, f"{where}.values"),
                    entity,
                )
            )
        except (AgentError, ValueError) as exc:
            refused.append((where, exc))
    return readings, refused
