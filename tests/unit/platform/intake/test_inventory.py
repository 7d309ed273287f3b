"""Onboarding a fleet from an inventory: one command, idempotent, one Secret per site."""

from __future__ import annotations

import json
import stat

import pytest
import yaml
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.core.settings import PlatformSettings
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop.rollout.render.group import token_secret


def _inventory(path, rows):
    path.write_text(
        "node,site,cohort\n" + "".join(f"{n},{s},{c}\n" for n, s, c in rows)
    )
    return path


def _run(*args):
    return CliRunner().invoke(app, ["-o", "json", "intake", "token", "create", *args])


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path / "home"))
    return tmp_path


def _store(home) -> IntakeStore:
    return IntakeStore.from_settings(PlatformSettings(home=home / "home"))


def _secret(out, site) -> dict[str, str]:
    name = token_secret("edgeloop-node-tokens", "site", site)  # what agents mount
    doc = yaml.safe_load((out / "secrets" / f"{name}.yaml").read_text())
    assert doc["kind"] == "Secret" and doc["metadata"]["name"] == name
    return doc["stringData"]


def test_every_node_gets_a_pinned_token_and_its_site_a_secret(home):
    rows = [(f"gw-{i:02d}", f"Site {i % 3}", "sulzer-msd") for i in range(30)]
    inventory = _inventory(home / "nodes.csv", rows)
    out = home / "tokens"
    done = _run("--inventory", str(inventory), "--out", str(out))
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {
        "nodes": 30,
        "issued": 30,
        "kept": 0,
        "sites": 3,
        "secrets": str(out / "secrets"),
    }
    store = _store(home)
    for site in ("Site 0", "Site 1", "Site 2"):
        data = _secret(out, site)
        assert len(data) == 10
        for node, token in data.items():
            identity = store.identity_for(token)
            assert identity is not None and identity.node == node
            assert (identity.site, identity.cohort) == (site, "sulzer-msd")
    one = out / "site-0" / "gw-00"
    assert stat.S_IMODE(one.stat().st_mode) == 0o600
    assert one.read_text().strip() == _secret(out, "Site 0")["gw-00"]


def test_re_running_keeps_tokens_and_adds_only_new_nodes(home):
    rows = [(f"gw-{i}", "north", "") for i in range(4)]
    out = home / "tokens"
    assert (
        _run(
            "--inventory", str(_inventory(home / "a.csv", rows)), "--out", str(out)
        ).exit_code
        == 0
    )
    before = _secret(out, "north")

    again = _run(
        "--inventory", str(_inventory(home / "a.csv", rows)), "--out", str(out)
    )
    assert (
        json.loads(again.stdout)["issued"] == 0
        and json.loads(again.stdout)["kept"] == 4
    )
    assert _secret(out, "north") == before

    grown = _run(
        "--inventory",
        str(_inventory(home / "b.csv", [*rows, ("gw-new", "north", "")])),
        "--out",
        str(out),
    )
    assert json.loads(grown.stdout)["issued"] == 1
    after = _secret(out, "north")
    assert {k: after[k] for k in before} == before and set(after) == {*before, "gw-new"}


def test_reissue_replaces_the_tokens(home):
    rows = [("gw-1", "north", "")]
    out = home / "tokens"
    _run("--inventory", str(_inventory(home / "a.csv", rows)), "--out", str(out))
    old = _secret(out, "north")["gw-1"]
    done = _run("--inventory", str(home / "a.csv"), "--out", str(out), "--reissue")
    new = _secret(out, "north")["gw-1"]
    store = _store(home)
    assert json.loads(done.stdout)["issued"] == 1 and new != old
    assert store.identity_for(old) is None and store.identity_for(new).node == "gw-1"


def test_a_yaml_inventory_works_too(home):
    (home / "nodes.yaml").write_text("nodes:\n  - {node: gw-1, site: north}\n")
    done = _run("--inventory", str(home / "nodes.yaml"), "--out", str(home / "t"))
    assert done.exit_code == 0 and set(_secret(home / "t", "north")) == {"gw-1"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("node,site\na,s\nb,\n", "row 3: node 'b' needs a site"),
        ("node,site\na,s\na,t\n", "row 3: node 'a' is listed again (first on row 2)"),
        ("node,site,rack\na,s,1\n", "row 2: unknown column 'rack'"),
        ("host,site\na,s\n", "the first line must name the columns"),
        ("node,site\n", "the inventory lists no nodes"),
        ('node,site\n"a b",s\n', "row 2: node 'a b' must be"),
        ("node,site\na,s,x\n", "row 2: more values than columns"),
    ],
)
def test_a_bad_inventory_is_one_line_and_issues_nothing(home, text, message):
    (home / "bad.csv").write_text(text)
    done = CliRunner().invoke(
        app,
        [
            "intake",
            "token",
            "create",
            "--inventory",
            str(home / "bad.csv"),
            "--out",
            str(home / "t"),
        ],
    )
    assert done.exit_code == 1
    assert message in done.output and len(done.output.strip().splitlines()) == 1
    assert not (home / "t").exists()


def test_inventory_and_single_node_options_do_not_mix(home):
    _inventory(home / "a.csv", [("gw-1", "north", "")])
    for args in (
        ["gw-1", "--inventory", str(home / "a.csv"), "--out", "x"],
        ["--inventory", str(home / "a.csv")],
        ["gw-1", "--reissue"],
        [],
    ):
        done = CliRunner().invoke(app, ["intake", "token", "create", *args])
        assert done.exit_code == 1 and done.output.startswith("error: "), args
