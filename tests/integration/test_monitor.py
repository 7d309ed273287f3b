"""Evidently runs from agents' samples (through the intake store) into a real workspace."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.core.settings import PlatformSettings
from edgeloop.demo.processes import spawn_logged
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop_agent.contracts import Report, RowSample, verify_bundle

pytestmark = pytest.mark.slow
START = datetime(2026, 6, 1, tzinfo=UTC)


def samples(bundle, node: str, cohort: str, shift: float, hours: int) -> list[Report]:
    manifest = verify_bundle(bundle)
    rows = np.array(
        [
            [np.nan if v is None else v for v in r]
            for r in manifest.reference_sample.inputs
        ]
    )
    out = []
    for h in range(hours):
        chosen = rows[(np.arange(60) + h * 7) % len(rows)] * (1 + shift) + shift * 3
        body = RowSample(
            site="offshore-01",
            cohort=cohort,
            model_name="pump-failure",
            model_version="1",
            window_end=START + timedelta(hours=h, minutes=30),
            columns=tuple(manifest.features.input_names()),
            rows=tuple(
                tuple(None if np.isnan(v) else float(v) for v in r) for r in chosen
            ),
            scores=tuple(0.1 for _ in chosen),
            entities=tuple(f"{node}-p{i % 2}" for i in range(len(chosen))),
        )
        out.append(
            Report(
                key=f"{node}:sample:{h}",
                node=node,
                created_at=body.window_end,
                body=body,
            )
        )
    return out


def platform_home(registry_with_champion, tmp_path, monkeypatch) -> PlatformSettings:
    """A home whose registry is a copy of the session's, holding pump-failure:1."""
    shutil.copyfile(
        registry_with_champion["root"] / "mlflow.db", tmp_path / "mlflow.db"
    )
    settings = PlatformSettings(home=tmp_path / "home")
    monkeypatch.setenv("EDGELOOP_HOME", str(settings.home))
    monkeypatch.setenv(
        "EDGELOOP_REGISTRY__TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}"
    )
    return settings


@pytest.mark.timeout(600)  # seven Evidently runs; 2-core CI machines vary a lot
def test_monitor_run_stores_snapshots_per_cohort_and_window_and_exports_html(
    registry_with_champion, tmp_path, monkeypatch
):
    settings = platform_home(registry_with_champion, tmp_path, monkeypatch)
    store = IntakeStore(settings.intake_database_url())
    bundle = registry_with_champion["run"].bundle_dir
    store.accept(
        samples(bundle, "gw-1", "flowserve-hpx", 0.0, 2)
        + samples(bundle, "gw-2", "sulzer-msd", 0.8, 2)
    )

    runner = CliRunner()
    first = runner.invoke(app, ["-o", "json", "monitor", "run"])
    assert first.exit_code == 0, first.output
    runs = json.loads(first.stdout)
    assert sorted((r["cohort"], r["window"][:13]) for r in runs) == [
        ("flowserve-hpx", "2026-06-01T00"),
        ("flowserve-hpx", "2026-06-01T01"),
        ("sulzer-msd", "2026-06-01T00"),
        ("sulzer-msd", "2026-06-01T01"),
    ]
    shifted = [r["drifted_columns"] for r in runs if r["cohort"] == "sulzer-msd"]
    calm = [r["drifted_columns"] for r in runs if r["cohort"] == "flowserve-hpx"]
    assert min(shifted) > max(calm)
    again = runner.invoke(app, ["-o", "json", "monitor", "run"])
    assert json.loads(again.stdout) == []  # nothing new since the last pass

    from evidently.ui.workspace import Workspace

    workspace = Workspace(str(settings.home / "evidently"))
    (project,) = workspace.search_project("pump-failure")
    stored = workspace.list_runs(project.id)
    assert len(stored) == 4
    assert workspace.get_run(project.id, stored[0]) is not None

    html = tmp_path / "report.html"
    exported = runner.invoke(
        app,
        [
            "-o",
            "json",
            "monitor",
            "report",
            "pump-failure:1",
            "--out",
            str(html),
            "--cohort",
            "sulzer-msd",
        ],
    )
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout)["rows"] == 120 and html.stat().st_size > 10_000
    missing = runner.invoke(
        app,
        ["monitor", "report", "pump-failure:1", "--out", str(html), "--cohort", "nope"],
    )
    assert missing.exit_code == 1 and "no samples received" in missing.stderr
    ui = json.loads(runner.invoke(app, ["-o", "json", "monitor", "ui"]).stdout)
    assert (
        "evidently ui --workspace" in ui["command"]
        and ui["url"] == "http://127.0.0.1:8765"
    )


@pytest.fixture()
def evidently_service(tmp_path):
    """A real `evidently ui` service on 127.0.0.1 over its own workspace."""
    import sys
    from pathlib import Path

    from edgeloop.demo.processes import wait_http

    from ..conftest import free_port

    port = free_port()
    binary = Path(sys.executable).with_name("evidently")
    log = tmp_path / "evidently-ui.log"
    proc = spawn_logged(
        [
            str(binary),
            "ui",
            "--workspace",
            str(tmp_path / "remote-ws"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        log,
        "wb",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/api/version", proc, "evidently ui", log)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_monitor_run_can_store_into_a_remote_evidently_ui_service(
    registry_with_champion, tmp_path, monkeypatch, evidently_service
):
    settings = platform_home(registry_with_champion, tmp_path, monkeypatch)
    monkeypatch.setenv("EDGELOOP_MONITOR__WORKSPACE", evidently_service)
    bundle = registry_with_champion["run"].bundle_dir
    store = IntakeStore(settings.intake_database_url())
    store.accept(samples(bundle, "gw-1", "flowserve-hpx", 0.0, 1))
    store.accept(samples(bundle, "gw-2", "sulzer-msd", 0.4, 1))
    result = CliRunner().invoke(app, ["-o", "json", "monitor", "run"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)
    assert sorted(r["cohort"] for r in runs) == ["flowserve-hpx", "sulzer-msd"]
    run = runs[0]

    from edgeloop.monitor.evidently_runs import MonitorWorkspace

    remote = MonitorWorkspace(evidently_service)
    assert sorted(remote.runs("pump-failure")) == sorted(r["snapshot"] for r in runs)
    # the dashboard is not empty: each panel, asked the way the UI asks, has a
    # series for every line it draws, from the snapshots it is about, at the
    # data window's time
    import httpx

    project = remote.project_id("pump-failure")
    board = httpx.get(f"{evidently_service}/api/v2/dashboards/{project}").json()
    titles = [panel["title"] for panel in board["panels"]]
    assert titles == [
        "Drifted columns, latest run",
        "Missing cells, all runs",
        "flowserve-hpx: drifted and missing share",
        "sulzer-msd: drifted and missing share",
        "Model v1: drifted share vs its training data",
    ]
    (tab,) = board["tabs"]
    assert tab["panels"] == [panel["id"] for panel in board["panels"]]  # each once
    for panel in board["panels"]:
        filters = [
            {
                "tags": value.get("tags") or [],
                "metadata": value.get("metadata") or {},
                "metric": value["metric"],
                "metric_labels": value.get("metric_labels") or {},
            }
            for value in panel["values"]
        ]
        series = httpx.post(
            f"{evidently_service}/api/v2/snapshots/{project}/data_series_batch",
            json={"series_filter": filters},
        ).json()
        assert series["series"] and all(s["values"] for s in series["series"]), panel
        # a line per filter (Evidently serves only the first of several filters
        # on one metric that differ by tag: the reason for a panel per site)
        served = {s["filter_index"] for s in series["series"]}
        assert served == set(range(len(filters))), panel["title"]
        assert {src["timestamp"][:13] for src in series["sources"]} == {
            run["window"][:13]
        }
        site = panel["title"].split(":")[0]
        if site in {"flowserve-hpx", "sulzer-msd"}:
            assert all(f"cohort={site}" in src["tags"] for src in series["sources"])
    ui = json.loads(CliRunner().invoke(app, ["-o", "json", "monitor", "ui"]).stdout)
    assert ui["url"] == evidently_service


def test_monitor_run_adds_pump_type_cohorts_from_an_asset_register(
    registry_with_champion, tmp_path, monkeypatch
):
    settings = platform_home(registry_with_champion, tmp_path, monkeypatch)
    IntakeStore(settings.intake_database_url()).accept(
        samples(registry_with_champion["run"].bundle_dir, "gw-1", "offshore-01", 0.0, 1)
    )
    assets = tmp_path / "fleet.json"
    assets.write_text(
        json.dumps(
            {
                "pumps": [
                    {"pump_id": "gw-1-p0", "pump_type": "flowserve-hpx"},
                    {"pump_id": "gw-1-p1", "pump_type": "sulzer-msd"},
                ]
            }
        )
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"pumps": [{"id": 1}]}')
    refused = CliRunner().invoke(app, ["monitor", "run", "--assets", str(bad)])
    assert refused.exit_code == 1 and "pump_id and pump_type" in refused.stderr
    result = CliRunner().invoke(
        app, ["-o", "json", "monitor", "run", "--assets", str(assets)]
    )
    assert result.exit_code == 0, result.output
    runs = {r["cohort"]: r["rows"] for r in json.loads(result.stdout)}
    assert runs == {
        "offshore-01": 60,
        "pump_type=flowserve-hpx": 30,
        "pump_type=sulzer-msd": 30,
    }


def _metric_kinds(snapshot) -> set[str]:
    return {
        str(m.get("metric_name", "")).split("(")[0]
        for m in json.loads(snapshot.json())["metrics"]
    }


def test_scheduled_runs_are_drift_only_unless_the_summary_is_asked_for():
    import pandas as pd

    from edgeloop.monitor.evidently_runs import run_report

    rng = np.random.default_rng(0)
    reference = pd.DataFrame(rng.normal(size=(50, 2)), columns=["a", "b"])
    meta = {"model": "m", "version": "1", "cohort": "c", "window": "w"}
    drift_only = _metric_kinds(
        run_report(reference[:20], reference, meta, summary=False)
    )
    # drift, plus the missing-value count the dashboard plots (cheap)
    assert drift_only == {
        "DriftedColumnsCount",
        "ValueDrift",
        "DatasetMissingValueCount",
    }
    full = _metric_kinds(run_report(reference[:20], reference, meta))
    assert {"DriftedColumnsCount", "MeanValue", "MissingValueCount"} <= full


def test_monitor_run_shows_progress_on_a_terminal_only(
    registry_with_champion, tmp_path, monkeypatch
):
    settings = platform_home(registry_with_champion, tmp_path, monkeypatch)
    bundle = registry_with_champion["run"].bundle_dir
    IntakeStore(settings.intake_database_url()).accept(
        samples(bundle, "gw-1", "flowserve-hpx", 0.0, 2)
    )
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: stderr is a terminal
    shown = CliRunner().invoke(app, ["monitor", "run"])
    assert shown.exit_code == 0, shown.output
    assert "Evidently runs" in shown.stderr and "2/2" in shown.stderr
    IntakeStore(settings.intake_database_url()).accept(
        samples(bundle, "gw-2", "flowserve-hpx", 0.0, 1)
    )
    as_json = CliRunner().invoke(app, ["-o", "json", "monitor", "run"])
    assert as_json.exit_code == 0 and "Evidently runs" not in as_json.stderr
    assert len(json.loads(as_json.stdout)) == 1
