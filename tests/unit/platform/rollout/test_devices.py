"""KubeEdge DeviceModel/Device objects from the asset register (devices.kubeedge.io/v1beta1).

Checked against the vendored CRD schemas directly (not only through the
renderer's own validation), and end to end: the device names the renderer
gives are the ids in the twin topics, and the agent map derived from the
Devices' labels makes the agent's twin assembler name the pump as training did.
"""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.core.errors import UsageError
from edgeloop.demo.simulator.config import SENSOR_RANGES
from edgeloop.rollout import validate
from edgeloop.rollout.render.devices import Pump, agent_devices, render_devices
from edgeloop_agent.contracts import SensorSpec
from edgeloop_agent.twins import TwinAssembler

SENSORS = [
    SensorSpec(name=n, unit=u, min=lo, max=hi)
    for n, (u, lo, hi) in SENSOR_RANGES.items()
]
PUMPS = [
    Pump("desert-02-p01", "desert-02", "centrifugal_a"),
    Pump("desert-02-p02", "desert-02", "centrifugal_b"),
    Pump("desert-02-p03", "desert-02", "centrifugal_a"),
    Pump("offshore-01-p01", "offshore-01", "centrifugal_a", node="offshore-gw-b"),
]
SITES = {
    "desert-02": ["desert-gw-a", "desert-gw-b"],
    "offshore-01": ["offshore-gw-a", "offshore-gw-b"],
}


def _crd_errors(obj: dict) -> list[str]:
    validator = validate._crd_validator(obj["apiVersion"], obj["kind"])
    return [e.message for e in validator.iter_errors(obj)]


def test_one_device_model_per_pump_type_and_one_device_per_pump_valid_against_the_crds():
    objects = render_devices(PUMPS, SENSORS, SITES, namespace="plant-a")
    kinds = [o["kind"] for o in objects]
    assert kinds == ["DeviceModel"] * 2 + ["Device"] * 4
    for obj in objects:
        assert _crd_errors(obj) == [], obj["metadata"]["name"]
        assert obj["metadata"]["namespace"] == "plant-a"
    model = objects[0]
    assert model["metadata"]["name"] == "pump-centrifugal-a"
    temp = next(p for p in model["spec"]["properties"] if p["name"] == "bearing_temp")
    assert temp == {
        "name": "bearing_temp",
        "type": "DOUBLE",
        "accessMode": "ReadOnly",
        "description": "bearing_temp (degC)",
        "unit": "degC",
        "minimum": "-40",
        "maximum": "150",
    }
    devices = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Device"}
    # the site's nodes in turn, in pump order; the register's own node wins
    assert {n: d["spec"]["nodeName"] for n, d in devices.items()} == {
        "desert-02-p01": "desert-gw-a",
        "desert-02-p02": "desert-gw-b",
        "desert-02-p03": "desert-gw-a",
        "offshore-01-p01": "offshore-gw-b",
    }
    p2 = devices["desert-02-p02"]
    assert p2["spec"]["deviceModelRef"] == {"name": "pump-centrifugal-b"}
    assert p2["metadata"]["labels"]["edgeloop.io/site"] == "desert-02"
    assert [p["name"] for p in p2["spec"]["properties"]] == list(SENSOR_RANGES)


def test_the_agent_map_from_the_devices_names_the_pump_in_twin_updates():
    pumps = [Pump("Site A/Pump #7", "a", "t1")]  # an id that is not a Kubernetes name
    objects = render_devices(pumps, SENSORS, {"a": ["gw"]})
    (device,) = [o for o in objects if o["kind"] == "Device"]
    assert device["metadata"]["name"] == "site-a-pump-7"
    mapping = agent_devices(objects, "gw")
    assert mapping == {"site-a-pump-7": "Site A/Pump #7"}
    assert agent_devices(objects, "another-node") == {}
    twins = TwinAssembler(mapping, {}, 30)
    sensors = ("vibration_rms",)
    update = {"twin": {"vibration_rms": {"actual": {"value": "2.5"}}}}
    (reading,) = twins.update("site-a-pump-7", json.dumps(update).encode(), sensors)
    assert reading.entity == "Site A/Pump #7" and reading.values == {
        "vibration_rms": 2.5
    }


def test_a_broken_object_is_refused_by_the_vendored_schema():
    (model, device) = render_devices(PUMPS[:1], SENSORS, SITES)
    model["spec"]["properties"][0]["type"] = "REAL"
    with pytest.raises(validate.InvalidManifest, match=r"DeviceModel/.*type.*'REAL'"):
        validate.validate(model)
    device["spec"]["properties"][0]["reportCycle"] = "often"
    with pytest.raises(
        validate.InvalidManifest,
        match=r"Device/desert-02-p01: spec.properties.0.reportCycle",
    ):
        validate.validate(device)


@pytest.mark.parametrize(
    ("pumps", "sites", "message"),
    [
        ([], SITES, "lists no pumps"),
        (
            [Pump("x-p1", "nowhere", "t")],
            SITES,
            "pump x-p1: no group of the rollout is at site 'nowhere'",
        ),
        (
            [Pump("d-p1", "desert-02", "t", node="elsewhere")],
            SITES,
            "node 'elsewhere' is not in site 'desert-02'",
        ),
        (
            [Pump("P_1", "desert-02", "t"), Pump("p-1", "desert-02", "t")],
            SITES,
            "both become Device 'p-1'",
        ),
    ],
)
def test_register_problems_are_one_clear_refusal(pumps, sites, message):
    with pytest.raises(UsageError, match=message):
        render_devices(pumps, SENSORS, sites)


def _rollout(tmp_path):
    path = tmp_path / "pumps.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "edgeloop.io/v1alpha1",
                "kind": "EdgeRollout",
                "metadata": {"name": "pumps", "namespace": "plant-a"},
                "spec": {
                    "model": {"name": "pump-failure", "alias": "champion"},
                    "runtime": {"image": "ghcr.io/edgeloop/edgeloop-agent:0.1.0"},
                    "groups": [
                        {
                            "name": "desert",
                            "site": "desert-02",
                            "nodes": SITES["desert-02"],
                        }
                    ],
                    "waves": [{"name": "all", "groups": ["desert"]}],
                },
            }
        )
    )
    return path


def test_the_cli_writes_the_objects_and_each_nodes_agent_map(tmp_path):
    register = tmp_path / "fleet.json"
    register.write_text(
        json.dumps(
            {
                "pumps": [
                    {"pump_id": p.pump_id, "site_id": p.site, "pump_type": p.pump_type}
                    for p in PUMPS[:3]
                ]
            }
        )
    )
    schema = tmp_path / "schema.yaml"
    schema.write_text(
        yaml.safe_dump(
            {
                "entity_column": "pump_id",
                "time_column": "ts",
                "features": [
                    {"name": "bearing_temp", "unit": "degC", "min": -40, "max": 150}
                ],
            }
        )
    )
    out = tmp_path / "devices.yaml"
    args = [
        "rollout",
        "devices",
        "-f",
        str(_rollout(tmp_path)),
        "--assets",
        str(register),
    ]
    result = CliRunner().invoke(
        app, [*args, "--schema", str(schema), "--out", str(out), "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["device_models"] == 2 and summary["devices"] == 3
    assert summary["agent_devices"]["desert-gw-b"] == {"desert-02-p02": "desert-02-p02"}
    written = list(yaml.safe_load_all(out.read_text()))
    assert all(_crd_errors(o) == [] for o in written)
    assert {o["metadata"]["namespace"] for o in written} == {"plant-a"}

    # to stdout (for kubectl apply -f -) when no --out is given
    piped = CliRunner().invoke(app, [*args, "--schema", str(schema)])
    assert piped.exit_code == 0, piped.output
    assert [o["kind"] for o in yaml.safe_load_all(piped.stdout)].count("Device") == 3

    no_protocol = CliRunner().invoke(
        app, [*args, "--schema", str(schema), "--protocol", " "]
    )
    assert no_protocol.exit_code == 1
    assert "--protocol must name the mapper's protocol" in no_protocol.output

    register.write_text(
        json.dumps({"pumps": [{"pump_id": "p1", "site_id": "desert-02"}]})
    )
    bad = CliRunner().invoke(app, [*args, "--schema", str(schema)])
    assert bad.exit_code == 1
    assert "pump 1: needs pump_id, site_id and pump_type" in bad.output
    assert "Traceback" not in bad.output and len(bad.output.strip().splitlines()) == 1
