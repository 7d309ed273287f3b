"""KubeEdge ``DeviceModel``/``Device`` objects for a site's pumps, from the asset register.

KubeEdge delivers sensor values to the node as device-twin updates, one
property per message, named by the ``Device`` and its properties
(``edgeloop_agent.twins``). Rendering those objects from the same asset
register and the model's sensors keeps the three names in step: the device is
the pump (labelled with its entity, site and type), its properties are the
model's sensors with their units and physical ranges, and the agent's
``devices`` map (device -> entity) is derived from the labels, not typed twice.

One ``DeviceModel`` per pump type (a type is a manufacturer's model, the
blueprint KubeEdge means). Each pump is bound to one node of its site's group:
the register's ``node`` when it names one, otherwise the site's nodes in turn
(pumps in id order), so every gateway takes a share and the result is stable.
Every object is validated against the vendored KubeEdge CRD schemas.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgeloop.core.errors import UsageError
from edgeloop.rollout.render.labels import MANAGED_BY, label_value
from edgeloop.rollout.validate import validate_all
from edgeloop_agent.contracts import SensorSpec

API_VERSION = "devices.kubeedge.io/v1beta1"
ENTITY_LABEL = "edgeloop.io/entity"
SITE_LABEL = "edgeloop.io/site"
TYPE_LABEL = "edgeloop.io/pump-type"
DEFAULT_PROTOCOL = "modbus"
"""The mapper protocol named on every property; a site's mapper fills in the rest."""


@dataclass(frozen=True)
class Pump:
    """One row of the asset register."""

    pump_id: str
    site: str
    pump_type: str
    node: str = ""


def _dns_name(value: str, what: str) -> str:
    """A DNS-1123 subdomain from an id, or a clear refusal."""
    name = re.sub(r"[^a-z0-9.-]+", "-", value.lower()).strip("-.")[:253]
    if not name:
        raise UsageError(f"{what} {value!r} gives no usable Kubernetes name")
    return name


def _nodes_by_pump(
    pumps: Sequence[Pump], site_nodes: Mapping[str, Sequence[str]]
) -> dict[str, str]:
    """Pump -> node: the register's own, else the site's nodes in turn."""
    out: dict[str, str] = {}
    turn: dict[str, int] = {}
    for pump in sorted(pumps, key=lambda p: p.pump_id):
        nodes = list(site_nodes.get(pump.site, ()))
        if pump.node:
            if nodes and pump.node not in nodes:
                raise UsageError(
                    f"pump {pump.pump_id}: node {pump.node!r} is not in site "
                    f"{pump.site!r}'s group ({', '.join(nodes)})"
                )
            out[pump.pump_id] = pump.node
            continue
        if not nodes:
            raise UsageError(
                f"pump {pump.pump_id}: no group of the rollout is at site "
                f"{pump.site!r} (give the pump a node in the register, or a group "
                "with that site)"
            )
        i = turn.get(pump.site, 0)
        out[pump.pump_id] = nodes[i % len(nodes)]
        turn[pump.site] = i + 1
    return out


def _device_model(
    pump_type: str, sensors: Sequence[SensorSpec], namespace: str, protocol: str
) -> dict[str, Any]:
    properties = []
    for sensor in sensors:
        prop: dict[str, Any] = {
            "name": sensor.name,
            "type": "DOUBLE",
            "accessMode": "ReadOnly",
            "description": f"{sensor.name} ({sensor.unit})"
            if sensor.unit
            else sensor.name,
        }
        if sensor.unit:
            prop["unit"] = sensor.unit
        if sensor.min is not None:
            prop["minimum"] = f"{sensor.min:g}"
        if sensor.max is not None:
            prop["maximum"] = f"{sensor.max:g}"
        properties.append(prop)
    return {
        "apiVersion": API_VERSION,
        "kind": "DeviceModel",
        "metadata": {
            "name": _dns_name(f"pump-{pump_type}", "pump type"),
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": MANAGED_BY,
                TYPE_LABEL: label_value(pump_type),
            },
        },
        "spec": {"protocol": protocol, "properties": properties},
    }


def _device(
    pump: Pump,
    node: str,
    sensors: Sequence[SensorSpec],
    namespace: str,
    protocol: str,
    report_cycle_ms: int,
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Device",
        "metadata": {
            "name": device_name(pump.pump_id),
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": MANAGED_BY,
                ENTITY_LABEL: label_value(pump.pump_id),
                SITE_LABEL: label_value(pump.site),
                TYPE_LABEL: label_value(pump.pump_type),
            },
            # the exact entity name (label values are sanitised)
            "annotations": {ENTITY_LABEL: pump.pump_id},
        },
        "spec": {
            "deviceModelRef": {
                "name": _dns_name(f"pump-{pump.pump_type}", "pump type")
            },
            "nodeName": node,
            "protocol": {"protocolName": protocol},
            "properties": [
                {
                    "name": sensor.name,
                    "collectCycle": report_cycle_ms,
                    "reportCycle": report_cycle_ms,
                    # the agent reads the twin on the node; nothing goes to the cloud
                    "reportToCloud": False,
                    "visitors": {"protocolName": protocol, "configData": {}},
                }
                for sensor in sensors
            ],
        },
    }


def device_name(pump_id: str) -> str:
    """The Device's name (the device id in twin topics) for a pump."""
    return _dns_name(pump_id, "pump id")


def render_devices(
    pumps: Sequence[Pump],
    sensors: Sequence[SensorSpec],
    site_nodes: Mapping[str, Sequence[str]],
    *,
    namespace: str = "edgeloop",
    protocol: str = DEFAULT_PROTOCOL,
    report_cycle_ms: int = 10_000,
) -> list[dict[str, Any]]:
    """DeviceModels (one per pump type) then Devices (one per pump), validated.

    Raises:
        UsageError: no pumps or sensors, a pump id used twice, two pumps whose
            ids give the same Kubernetes name, or a pump with no node.
        InvalidManifest: an object breaks the vendored CRD schema.
    """
    if not pumps:
        raise UsageError("the asset register lists no pumps")
    if not sensors:
        raise UsageError("the model has no sensors to render as device properties")
    names: dict[str, str] = {}
    for pump in pumps:
        name = device_name(pump.pump_id)
        if name in names:
            raise UsageError(
                f"pumps {names[name]!r} and {pump.pump_id!r} both become Device {name!r}"
            )
        names[name] = pump.pump_id
    nodes = _nodes_by_pump(pumps, site_nodes)
    objects = [
        _device_model(pump_type, sensors, namespace, protocol)
        for pump_type in sorted({p.pump_type for p in pumps})
    ]
    objects += [
        _device(p, nodes[p.pump_id], sensors, namespace, protocol, report_cycle_ms)
        for p in sorted(pumps, key=lambda p: p.pump_id)
    ]
    validate_all(objects)
    return objects


def agent_devices(objects: Sequence[Mapping[str, Any]], node: str) -> dict[str, str]:
    """The agent's ``mqtt.devices`` map (device id -> entity) for one node.

    Read from the rendered Devices' entity annotation, so the agent on ``node``
    names each twin update's pump exactly as the training data did.
    """
    return {
        obj["metadata"]["name"]: obj["metadata"]["annotations"][ENTITY_LABEL]
        for obj in objects
        if obj.get("kind") == "Device" and obj["spec"].get("nodeName") == node
    }
