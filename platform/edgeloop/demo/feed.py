"""Feeding each simulated day to the agents and checking what reached the intake."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from edgeloop.core.errors import EdgeloopError
from edgeloop.demo import stream
from edgeloop.demo.link import wait_until
from edgeloop.demo.scenario import CANARY_SITE
from edgeloop.monitor.intake.store import IntakeStore


@contextmanager
def publisher(port: int) -> Iterator[Any]:
    """An MQTT client on the demo's broker (QoS 1 publishing)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="edgeloop-demo-feed")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        yield client
    finally:
        # disconnect while the network loop still runs: it sends DISCONNECT
        # and closes the socket; stopped first, the socket would be left open
        client.disconnect()
        client.loop_stop()


class Feeder:
    """Sends each day's readings to each node and waits until they are scored."""

    def __init__(
        self,
        window_readings: int,
        collect_root: Path | str,
        client: httpx.Client,
        agents: dict[str, str],
        publisher: Any,
        store: IntakeStore,
        readings: pd.DataFrame,
    ) -> None:
        self.window_readings = window_readings
        self.collect_root = collect_root
        self.client = client
        self.agents = agents
        self.publisher = publisher
        self.store = store
        self.readings = readings
        self.sent: dict[str, int] = dict.fromkeys(agents, 0)

    def day(self, day: pd.Timestamp, online: set[str]) -> None:
        """Send one simulated day to every node; wait for ``online`` nodes' windows."""
        today = self.readings[self.readings["timestamp"].dt.floor("D") == day]
        for node, url in self.agents.items():
            items = stream.payloads(today[today["node"] == node])
            if not items:
                continue
            if self.publisher is not None and node.startswith(CANARY_SITE):
                before = stream.scored(self.client, url, "edgeloop_mqtt_scored_total")
                stream.send_mqtt(self.publisher, node, items)
                target = before + len(items)
                if not wait_until(
                    lambda url=url, target=target: (  # type: ignore[misc]
                        stream.scored(self.client, url, "edgeloop_mqtt_scored_total")
                        >= target
                    ),
                    60,
                ):
                    raise EdgeloopError(f"{node} did not score its MQTT readings")
            else:
                stream.send_http(self.client, url, items)
            self.sent[node] += len(items)
        expected = {n: self.sent[n] // self.window_readings for n in online}
        if not wait_until(
            lambda: all(
                self.store.count("drift", node=n) >= k for n, k in expected.items()
            ),
            60,
            0.2,
        ):
            raise EdgeloopError("drift windows did not reach the intake within 60 s")

    def integrity(self) -> dict[str, Any]:
        """Readings sent per node vs rows collected (unique and total)."""
        from edgeloop.monitor.intake import collect

        rows = collect.load(
            collect.partitions(self.collect_root, "readings", "pump-failure")
        )
        out: dict[str, Any] = {"nodes": {}}
        for node, sent in sorted(self.sent.items()):
            mine = rows[rows["node"] == node] if not rows.empty else rows
            unique = (
                len(mine.drop_duplicates(["pump_id", "timestamp"])) if len(mine) else 0
            )
            out["nodes"][node] = {
                "sent": sent,
                "collected": len(mine),
                "unique": unique,
            }
        out["lost"] = sum(v["sent"] - v["unique"] for v in out["nodes"].values())
        out["duplicated"] = sum(
            v["collected"] - v["unique"] for v in out["nodes"].values()
        )
        return out
