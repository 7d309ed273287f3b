"""`edgeloop demo --fast`: the README's main command, the whole loop in its small form.

Real agents (subprocesses), a real intake, mosquitto, kfp.local training twice,
the rollout controller with the local sink, an offline site, Evidently. The
assertions follow the chain the issue asks for: the fleet ends on a retrained
model whose lineage leads back to the drift reports that triggered it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.demo.processes import PROCESS_LOG, still_running
from edgeloop.monitor.intake.store import IntakeStore

pytestmark = [pytest.mark.kfp_local, pytest.mark.slow]
UI_CHECK = Path(__file__).resolve().parents[2] / "hack" / "ui_check.py"


# generous: on 2 cores the run takes 10-15 min, about a third of it Evidently
# writing its snapshots (~1 min each); the timeout only catches a hang
@pytest.mark.timeout(1800)
def test_the_closed_loop_retrains_on_drift_and_the_fleet_ends_on_the_new_model(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["-o", "json", "demo", "--fast"])
    assert result.exit_code == 0, result.output
    loop = json.loads(result.stdout)
    home = Path(loop["home"])

    # every node (the offline site included, after it came back) serves v2
    assert loop["versions"] == dict.fromkeys(loop["versions"], "2")
    assert len(loop["versions"]) == 6
    v1, v2 = loop["gates"]
    assert v1["promoted"] and v2["promoted"] and v2["parent"] == "pump-failure:1"
    # what a planner asks, per version, on its holdout (shown in the summary too)
    for version in (v1, v2):
        assert set(version["events"]) == {
            "event_recall",
            "median_lead_hours",
            "false_alarms_per_asset_month",
        }
        assert version["events"]["false_alarms_per_asset_month"] is not None
        assert 0 < version["threshold"] < 1

    # drift fired once, for the shifted site; the faulty site only raised alerts
    fired = [d for d in loop["decisions"] if d["fired"]]
    assert [(d["kind"], d["cohort"]) for d in fired] == [("drift", "desert-02")]
    alerts = {d["cohort"] for d in loop["decisions"] if d["kind"] == "data_quality"}
    assert alerts == {"arctic-03"}
    drifted = loop["drift"]["desert-02"]["1"]["drifted_inputs"]
    assert any(name.startswith("ambient_temp") for name in drifted)

    # nothing lost or duplicated, the offline site buffered and caught up
    assert loop["integrity"]["lost"] == 0 and loop["integrity"]["duplicated"] == 0
    assert loop["offline"]["caught_up"] is True
    assert sum(loop["offline"]["buffered_reports"].values()) > 0

    # lineage of v2: collected partitions -> run -> bundle -> rollout -> nodes,
    # and the trigger whose evidence is drift reports the intake judged drifted
    lineage = loop["lineage"]
    assert lineage["model"] == "pump-failure:2"
    assert lineage["data"]["partitions"] and all(
        len(p["sha256"]) == 64 for p in lineage["data"]["partitions"]
    )
    assert {r["action"] for r in lineage["rollouts"]} >= {"start", "complete"}
    assert sorted(lineage["fleet"]["nodes"]) == sorted(loop["versions"])
    trigger = lineage["training"][-1]["trigger"]
    assert trigger["kind"] == "drift" and trigger["cohort"] == "desert-02"
    store = IntakeStore(f"sqlite:///{home / 'intake.db'}")
    drifted_reports = set(store.version_drift("1").drifted_reports)
    assert set(trigger["evidence"]["reports"]) <= drifted_reports
    assert trigger["evidence"]["reports"]

    # the same chain from the CLI, and an intact audit log
    monkeypatch.setenv("EDGELOOP_HOME", str(home))
    shown = CliRunner().invoke(
        app, ["-o", "json", "models", "lineage", "pump-failure:1"]
    )
    assert shown.exit_code == 0, shown.output
    parent = json.loads(shown.stdout)
    assert [n["model"] for n in parent["next_versions"]] == ["pump-failure:2"]
    assert parent["triggers"] and parent["triggers"][0]["reports"]
    # a person (or CI) retrains on what the fleet sent since v1's data, from the CLI
    again = CliRunner().invoke(
        app,
        [
            "-o",
            "json",
            "retrain",
            "--reason",
            "weekly refresh",
            "--fresh-from",
            str(home / "data-v1"),
        ],
    )
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["registered"]["version"] == 3
    # MLflow names what started each training run (the edgeloop.trigger tag)
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    started_by = {
        v: client.get_run(client.get_model_version("pump-failure", v).run_id).data.tags[
            "edgeloop.trigger"
        ]
        for v in ("2", "3")
    }
    assert started_by == {"2": "drift:desert-02", "3": "manual: weekly refresh"}
    verified = CliRunner().invoke(app, ["-o", "json", "audit", "verify"])
    assert verified.exit_code == 0 and json.loads(verified.stdout)["records"] > 10
    assert loop["evidently"]["snapshots"] > 0
    _summary_agrees_with_the_evidently_snapshots(loop, result.stderr)

    # every process the demo started (and only those: other agents may run on
    # this machine) is recorded and gone
    started = (home / PROCESS_LOG).read_text().splitlines()
    assert len(started) >= 6  # six agents (+ mosquitto when installed)
    assert still_running(home) == []
    assert "mlflow ui --backend-store-uri" in result.stderr
    assert os.path.isdir(home / "evidently")
    _the_ui_pages_render(home, tmp_path / "ui")


def _ui_check(home: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(UI_CHECK), "--home", str(home), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def _the_ui_pages_render(home: Path, out: Path) -> None:
    """`make ui-check` on the demo's home: real servers, headless Chromium, the DOM."""
    checked = _ui_check(home, out)
    assert checked.returncode == 0, checked.stderr
    for png in ("mlflow-model.png", "evidently-dashboard.png"):
        assert (out / png).stat().st_size > 10_000
    # and it tells an empty dashboard from a good one, by what the page shows
    from evidently.ui.workspace import Workspace

    (project,) = Workspace(str(home / "evidently")).search_project("pump-failure")
    project.dashboard.clear_dashboard()
    empty = _ui_check(home, out / "empty")
    assert empty.returncode == 1
    assert "the page shows 'This dashboard is currently empty'" in empty.stderr


def _snapshot_shares(workspace: Path) -> dict[tuple[str, str], float]:
    """Worst drifted share per (site, version), read from the stored snapshot files."""
    shares: dict[tuple[str, str], float] = {}
    for file in workspace.glob("*/snapshots/*.json"):
        snapshot = json.loads(file.read_text())
        key = (snapshot["metadata"]["cohort"], snapshot["metadata"]["version"])
        for result in snapshot["metric_results"].values():
            params = result["metric_value_location"]["metric"]["params"]
            if params["type"].endswith(":DriftedColumnsCount"):
                shares[key] = max(shares.get(key, 0.0), result["share"]["value"])
    return shares


def _summary_agrees_with_the_evidently_snapshots(loop: dict, summary: str) -> None:
    """The summary's Evidently column is the snapshots' number, row by row."""
    shares = _snapshot_shares(Path(loop["evidently"]["workspace"]))
    rows = {
        (site, version): row
        for site, versions in loop["drift"].items()
        for version, row in versions.items()
    }
    assert shares and set(shares) <= set(rows)
    for key, row in rows.items():
        assert row["evidently_share"] == pytest.approx(shares.get(key)), key
    # and the printed table shows it beside the agent's and the baseline's share
    for (site, version), share in shares.items():
        row = rows[site, version]
        cells = [
            site,
            f"v{version}",
            str(row["windows"]),
            f"{row['max_baseline_share']:.2f}" if row["judged"] else "building",
            f"{row['max_reference_share']:.2f}",
            f"{share:.2f}",
        ]
        printed = [
            [c.strip() for c in line.split("│")[1:7]]
            for line in summary.splitlines()
            if line.startswith("│ ") and f" {site} " in line
        ]
        assert cells in printed, (cells, printed)
    assert "own baseline: against the node's first windows" in summary
