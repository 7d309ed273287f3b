"""``edgeloop rollout devices``: KubeEdge DeviceModel/Device objects for a rollout's pumps.

The pumps come from the asset register (``fleet.json``: ``pumps`` with
``pump_id``, ``site_id``, ``pump_type`` and optionally ``node``), the nodes
from the EdgeRollout's groups (by ``site``), the sensors from the model the
rollout follows (its bundle in the registry) or a dataset schema.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
import yaml

from edgeloop.cli.output import emit, stderr
from edgeloop.core.errors import UsageError

if TYPE_CHECKING:
    from edgeloop.rollout.render.devices import Pump
    from edgeloop.rollout.spec import EdgeRollout
    from edgeloop_agent.contracts import SensorSpec


def _pumps(path: Path) -> list[Pump]:
    from edgeloop.rollout.render.devices import Pump

    try:
        pumps = json.loads(path.read_text(encoding="utf-8")).get("pumps")
    except (OSError, ValueError, AttributeError) as exc:
        raise UsageError(f"{path}: cannot read the asset register ({exc})") from exc
    if not isinstance(pumps, list):
        raise UsageError(f"{path}: expected a 'pumps' list")
    out = []
    for i, row in enumerate(pumps, start=1):
        if not isinstance(row, dict) or not all(
            isinstance(row.get(k), str) and row[k]
            for k in ("pump_id", "site_id", "pump_type")
        ):
            raise UsageError(
                f"{path}: pump {i}: needs pump_id, site_id and pump_type as text"
            )
        out.append(
            Pump(
                row["pump_id"],
                row["site_id"],
                row["pump_type"],
                str(row.get("node", "")),
            )
        )
    return out


def _sensors(rollout: EdgeRollout, schema: Path | None) -> list[SensorSpec]:
    """From the schema when given, else the bundle of the model the rollout follows."""
    if schema is not None:
        from edgeloop_components.dataset import load_schema

        return [f.sensor_spec() for f in load_schema(schema).features]
    from edgeloop.core.settings import load_settings
    from edgeloop.provenance.registry import ModelRef, Registry

    registry = Registry(load_settings().tracking_uri())
    model = rollout.spec.model
    version = registry.resolve(ModelRef(model.name, model.alias, model.version))
    return list(registry.manifest(ModelRef(model.name, version=version)).sensors)


def devices(
    ctx: typer.Context,
    file: Path = typer.Option(..., "--file", "-f", help="EdgeRollout YAML file."),
    assets: Path = typer.Option(
        ..., "--assets", help="Asset register (fleet.json with a 'pumps' list)."
    ),
    schema: Path | None = typer.Option(
        None,
        "--schema",
        help="Dataset schema for the sensors (default: the bundle of the rollout's model).",
    ),
    protocol: str = typer.Option(
        "modbus", "--protocol", help="Mapper protocol named on the devices."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Write the YAML here (default: stdout, for kubectl apply -f -).",
    ),
) -> None:
    """KubeEdge DeviceModel (per pump type) and Device (per pump) objects, schema-checked."""
    from edgeloop.rollout.controller import load_rollout
    from edgeloop.rollout.render.devices import agent_devices, render_devices

    if not protocol.strip():
        raise UsageError("--protocol must name the mapper's protocol (e.g. modbus)")
    rollout = load_rollout(file)
    site_nodes: dict[str, list[str]] = {}
    for group in rollout.spec.groups:
        if group.site:
            site_nodes.setdefault(group.site, []).extend(group.nodes)
    objects = render_devices(
        _pumps(assets),
        _sensors(rollout, schema),
        site_nodes,
        namespace=rollout.metadata.namespace,
        protocol=protocol,
    )
    text = yaml.safe_dump_all(objects, sort_keys=False)
    nodes = sorted({o["spec"]["nodeName"] for o in objects if o["kind"] == "Device"})
    summary: dict[str, Any] = {
        "device_models": sum(o["kind"] == "DeviceModel" for o in objects),
        "devices": sum(o["kind"] == "Device" for o in objects),
        # what each node's agent takes as EDGELOOP_AGENT_MQTT__DEVICES
        "agent_devices": {node: agent_devices(objects, node) for node in nodes},
    }
    if out is None:
        sys.stdout.write(text)
        stderr().print(
            f"{summary['device_models']} DeviceModel(s), {summary['devices']} Device(s) "
            f"on {len(nodes)} node(s)"
        )
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{out}: cannot write ({exc.strerror})") from exc
    emit(ctx, {"file": str(out), **summary})
