"""Alarms explained from the node to the operator: the agent names the sensors
behind each alarm, its drift windows count them, the intake serves them and
``edgeloop alarms list/explain`` shows them."""

from __future__ import annotations

import json
import shutil

import httpx
from typer.testing import CliRunner

from edgeloop.cli import app as cli
from edgeloop_agent.api.app import create_app as create_agent
from edgeloop_agent.contracts import MANIFEST_FILE

from ..conftest import free_port
from ..servers import serve_app
from .test_agent_http import SENSORS, activate, settings_for, wait_for
from .test_intake import intake

__all__ = ["intake"]  # the fixture, used by name


def test_alarm_causes_travel_from_the_node_to_the_cli(
    intake, tmp_path, registry_with_champion, monkeypatch
):
    url, store, platform = intake
    token = store.create_token("node-a")
    bundle = tmp_path / "bundle"
    shutil.copytree(registry_with_champion["run"].bundle_dir, bundle)
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    manifest["output"]["threshold"] = 0.0  # every reading alarms
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))
    settings = settings_for(tmp_path / "agent", url)
    settings.outbox.token = token
    hot = {**SENSORS, "vibration_rms": 30.0, "bearing_temp": 120.0}
    with serve_app(create_agent(settings), free_port(), lifespan="on") as agent:
        activate(agent, settings, bundle)
        answer = httpx.post(
            f"{agent}/predict",
            json={"readings": [{"entity": "p1", "values": hot}] * 40},
        ).json()
        wait_for(lambda: store.count("drift") >= 2, what="drift windows at the intake")
    named = [
        r["explanation"][0]["sensor"] for r in answer["results"] if r["explanation"]
    ]
    assert named, answer["results"][:2]

    windows = store.recent_alarms("node-a")
    assert sum(w["alarms"] for w in windows) == 40
    counted = {}
    for w in windows:
        for sensor, count in w["alarm_causes"].items():
            counted[sensor] = counted.get(sensor, 0) + count
    assert counted == {s: named.count(s) for s in set(named)}

    reader = store.create_token("ops", role="reader")
    # the fleet view carries the latest window's alarms and their causes
    (view,) = httpx.get(
        f"{url}/v1/fleet", headers={"Authorization": f"Bearer {reader}"}
    ).json()
    latest = windows[0]
    assert view["alarms"] == latest["alarms"] > 0
    assert view["alarm_causes"] == latest["alarm_causes"]
    monkeypatch.setenv("EDGELOOP_HOME", str(platform.home))
    monkeypatch.setenv("EDGELOOP_INTAKE__READER_TOKEN", reader)
    runner = CliRunner()
    listed = runner.invoke(cli, ["-o", "json", "alarms", "list", "--intake", url])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert {r["node"] for r in rows} == {"node-a"} and sum(
        r["alarms"] for r in rows
    ) == 40
    first = max(counted, key=lambda s: counted[s])
    assert any(r["named_first"].startswith(first) for r in rows)

    explained = runner.invoke(
        cli, ["-o", "json", "alarms", "explain", "node-a", "--intake", url]
    )
    assert explained.exit_code == 0, explained.output
    top = json.loads(explained.stdout)[0]
    assert top["sensor"] == first and top["alarms_named_first"] == counted[first]
    # the same from the local intake database, without --intake
    local = runner.invoke(cli, ["-o", "json", "alarms", "explain", "node-a"])
    assert local.exit_code == 0 and json.loads(local.stdout)[0] == top

    unknown = runner.invoke(cli, ["alarms", "explain", "node-z", "--intake", url])
    assert unknown.exit_code != 0
    assert "node 'node-z': no alarms" in unknown.output
    monkeypatch.setenv("EDGELOOP_INTAKE__READER_TOKEN", "wrong")
    refused = runner.invoke(cli, ["alarms", "list", "--intake", url])
    assert refused.exit_code != 0 and "reader token" in refused.output
