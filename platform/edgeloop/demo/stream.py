"""Feeding simulated readings to the agents: HTTP ``/predict`` or MQTT, in time order.

Each reading carries its timestamp, so the agents' windows and the collected
partitions are in simulated time. ``scored`` reads the agent's own counters
from ``/metrics`` so the demo knows when a node has processed what it was sent.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pandas as pd

from edgeloop.demo.simulator import config as cfg

CHUNK = 1000


def payloads(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Readings of one node as ``/predict`` items, in time order."""
    frame = frame.sort_values(["timestamp", "pump_id"], kind="stable")
    stamps = pd.to_datetime(frame["timestamp"]).dt.tz_localize("UTC")
    values = frame[list(cfg.SENSORS)].to_numpy(dtype=float)
    out = []
    for entity, stamp, row in zip(
        frame["pump_id"], stamps.map(pd.Timestamp.isoformat), values, strict=True
    ):
        out.append(
            {
                "entity": str(entity),
                "timestamp": stamp,
                "values": {
                    name: (None if np.isnan(v) else float(v))
                    for name, v in zip(cfg.SENSORS, row, strict=True)
                },
            }
        )
    return out


def send_http(client: httpx.Client, url: str, items: list[dict[str, Any]]) -> None:
    """POST readings in chunks; any refusal is an error (the agent runs locally)."""
    for start in range(0, len(items), CHUNK):
        response = client.post(
            f"{url}/predict", json={"readings": items[start : start + CHUNK]}
        )
        if response.status_code != 200:
            raise RuntimeError(
                f"{url}/predict answered {response.status_code}: {response.text[:200]}"
            )


def send_mqtt(publisher: Any, node: str, items: list[dict[str, Any]]) -> None:
    """Publish readings at QoS 1 to the node's topic branch, waiting for each ack."""
    infos = []
    for item in items:
        topic = f"edgeloop/{node}/{item['entity']}/readings"
        body = json.dumps({"ts": item["timestamp"], "values": item["values"]})
        infos.append(publisher.publish(topic, body, qos=1))
    for info in infos:
        info.wait_for_publish(timeout=30)


def scored(client: httpx.Client, url: str, metric: str) -> float:
    """Sum of one metric's samples in the agent's ``/metrics`` (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = client.get(f"{url}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == metric
    )
