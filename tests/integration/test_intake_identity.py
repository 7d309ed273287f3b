"""A node's token fixes who it is: its site cannot be borrowed, and tokens
rotate with two valid for a window."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from typer.testing import CliRunner

from edgeloop.cli import app as cli
from edgeloop.core.errors import PermanentError
from edgeloop.core.settings import PlatformSettings
from edgeloop.monitor.intake.app import create_app
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop.rollout.fleet import IntakeFleet

from ..conftest import free_port
from ..servers import serve_app
from .test_intake import heartbeat_report, post


def at_site(report, site: str):
    return report.model_copy(
        update={"body": report.body.model_copy(update={"site": site})}
    )


@pytest.fixture()
def intake(tmp_path):
    settings = PlatformSettings(home=tmp_path / "home")
    store = IntakeStore.from_settings(settings)
    with serve_app(create_app(settings, store), free_port()) as url:
        yield url, store


def test_a_node_cannot_report_into_another_site(intake):
    """Before: node-a's reports claiming site-b landed in site-b's statistics."""
    url, store = intake
    token = store.create_token("node-a", site="site-a", cohort="flowserve")
    claim = at_site(heartbeat_report("node-a", "node-a:hb:1"), "site-b")
    assert post(url, token, [claim]).status_code == 200
    (view,) = store.fleet()
    assert (view.site, view.cohort) == ("site-a", "flowserve")


def test_without_a_pinned_site_the_first_report_pins_it(intake):
    url, store = intake
    token = store.create_token("node-a")
    post(url, token, [at_site(heartbeat_report("node-a", "node-a:hb:1"), "site-a")])
    post(url, token, [at_site(heartbeat_report("node-a", "node-a:hb:2"), "site-b")])
    (view,) = store.fleet()
    assert view.site == "site-a"


def test_rotation_keeps_both_tokens_for_the_window_only(intake):
    url, store = intake
    old = store.create_token("node-a", site="s")
    new, until = store.rotate_token("node-a", window_s=3600)
    assert until > datetime.now(UTC)
    assert (
        post(url, old, [heartbeat_report("node-a", "node-a:hb:1")]).status_code == 200
    )
    assert (
        post(url, new, [heartbeat_report("node-a", "node-a:hb:2")]).status_code == 200
    )
    newest, _ = store.rotate_token("node-a", window_s=0)  # the old window ends now
    assert (
        post(url, new, [heartbeat_report("node-a", "node-a:hb:3")]).status_code == 401
    )
    assert (
        post(url, old, [heartbeat_report("node-a", "node-a:hb:4")]).status_code == 401
    )
    assert (
        post(url, newest, [heartbeat_report("node-a", "node-a:hb:5")]).status_code
        == 200
    )


def test_token_cli_create_and_rotate(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    created = runner.invoke(
        cli,
        ["-o", "json", "intake", "token", "create", "gw-1", "--site", "offshore-01"],
    )
    assert created.exit_code == 0, created.output
    rotated = runner.invoke(
        cli, ["-o", "json", "intake", "token", "rotate", "gw-1", "--window-hours", "2"]
    )
    assert rotated.exit_code == 0, rotated.output
    first, second = json.loads(created.stdout), json.loads(rotated.stdout)
    assert first["token"] != second["token"]
    store = IntakeStore.from_settings(PlatformSettings(home=tmp_path / "home"))
    assert store.identity_for(first["token"]).site == "offshore-01"
    assert store.node_for(second["token"]) == "gw-1"
    missing = runner.invoke(cli, ["intake", "token", "rotate", "gw-2"])
    assert missing.exit_code != 0 and "has no token to rotate" in missing.stderr
    assert "Traceback" not in missing.output


def test_fleet_reads_need_a_reader_token_and_readers_cannot_post(intake):
    """Before: GET /v1/fleet and /v1/cohorts answered anyone on the network."""
    url, store = intake
    node = store.create_token("node-a")
    reader = store.create_token("dashboards", role="reader")
    for path in ("/v1/fleet", "/v1/cohorts"):
        anonymous = httpx.get(f"{url}{path}")
        assert anonymous.status_code == 401
        assert anonymous.json() == {"error": "reading the fleet needs a reader token"}
        as_node = httpx.get(f"{url}{path}", headers={"Authorization": f"Bearer {node}"})
        assert as_node.status_code == 403
        ok = httpx.get(f"{url}{path}", headers={"Authorization": f"Bearer {reader}"})
        assert ok.status_code == 200
    posted = post(url, reader, [heartbeat_report("dashboards", "dashboards:hb:1")])
    assert posted.status_code == 403 and "reader token" in posted.json()["error"]
    with pytest.raises(PermanentError, match="refused to show the fleet"):
        IntakeFleet(url, token=node).observe()


def test_api_docs_can_be_turned_off(tmp_path):
    settings = PlatformSettings(home=tmp_path / "home")
    settings.intake.api_docs = False
    with serve_app(create_app(settings), free_port()) as url:
        assert httpx.get(f"{url}/docs").status_code == 404
        assert httpx.get(f"{url}/openapi.json").status_code == 404
