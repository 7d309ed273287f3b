"""Drift reports through the real intake store -> trigger policy -> recorded decisions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.core.settings import PlatformSettings
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop.triggers.engine import TriggerEngine
from edgeloop.triggers.policy import TriggerPolicy
from edgeloop_agent.contracts import DriftWindow, FeatureWindow, Report, SensorQuality

START = datetime(2026, 6, 1, tzinfo=UTC)


#: The first three windows of a node build its baseline (small wobble) ...
BASELINE_COUNTS = ((48, 52), (52, 48), (50, 50))
#: ... after which this is far outside it.
SHIFTED = (5, 95)


def window(
    node: str, i: int, share: float, cohort: str = "offshore", stuck: bool = False
) -> Report:
    """Window ``i`` of a node: baseline counts first, then shifted ones."""
    end = START + timedelta(minutes=5 * (i + 1))
    counts = BASELINE_COUNTS[i] if i < len(BASELINE_COUNTS) else SHIFTED
    quality = (
        SensorQuality(
            name="bearing_temp", readings=100, stuck_entities=("p1",) if stuck else ()
        ),
    )
    body = DriftWindow(
        site="offshore-01",
        cohort=cohort,
        model_name="pump-failure",
        model_version="1",
        window_start=end - timedelta(minutes=5),
        window_end=end,
        rows=100,
        features=(FeatureWindow(name="f", counts=counts, psi=share),),
        psi_threshold=0.2,
        drifted_share=share,
        quality=quality,
    )
    return Report(key=f"{node}:drift:{i}", node=node, created_at=end, body=body)


def test_drift_storm_through_the_intake_fires_once_and_faults_do_not(
    tmp_path, monkeypatch
):
    settings = PlatformSettings(home=tmp_path / "home")
    store = IntakeStore(settings.intake_database_url())
    policy = TriggerPolicy(consecutive=2, cooldown_s=3600)
    engine = TriggerEngine(store, settings.home / "triggers.json", policy)
    for i in range(
        8
    ):  # a storm: every node drifted against its baseline, reports delivered twice
        batch = [window(n, i, 0.8) for n in ("gw-1", "gw-2", "gw-3")]
        store.accept(batch)
        store.accept(batch)
    store.accept(
        [window("gw-9", i, 0.9, cohort="arctic", stuck=True) for i in range(8)]
    )
    decisions = engine.evaluate(now=START.timestamp() + 3000)
    fired = [d for d in decisions if d.fired]
    assert len(fired) == 1 and fired[0].cohort == "offshore"
    assert fired[0].evidence["drifted_nodes"] == ["gw-1", "gw-2", "gw-3"]
    assert fired[0].evidence["shares"] == {"gw-1": 1.0, "gw-2": 1.0, "gw-3": 1.0}
    view = {n.node: n.model_dump() for n in store.fleet()}
    assert (
        view["gw-1"]["drifted_inputs"] == ["f"]
        and view["gw-1"]["baseline_share"] == 1.0
    )
    assert (
        view["gw-9"]["baseline_share"] is None
    )  # faulty windows never build a baseline
    alerts = [d for d in decisions if d.kind == "data_quality"]
    assert alerts and all(d.cohort == "arctic" for d in alerts)
    assert (
        engine.evaluate(now=START.timestamp() + 3100) == []
    )  # nothing new: nothing decided again

    reloaded = TriggerEngine(store, settings.home / "triggers.json", policy)
    assert len(reloaded.decisions()) == len(engine.decisions())

    monkeypatch.setenv("EDGELOOP_HOME", str(settings.home))
    listed = CliRunner().invoke(app, ["-o", "json", "triggers", "list"])
    assert listed.exit_code == 0, listed.output
    kinds = [d["kind"] for d in json.loads(listed.stdout)]
    assert kinds.count("drift") == 1 and "data_quality" in kinds
    manual = CliRunner().invoke(
        app, ["-o", "json", "retrain", "--reason", "new impeller batch"]
    )
    assert json.loads(manual.stdout)["decision"]["kind"] == "manual"
    ci = CliRunner().invoke(
        app,
        ["-o", "json", "retrain", "--code-change", "--reason", "features v2 (abc123)"],
    )
    assert json.loads(ci.stdout)["decision"]["kind"] == "code_change"
    nothing = CliRunner().invoke(
        app, ["retrain", "--reason", "drift", "--fresh-from", str(tmp_path)]
    )
    assert nothing.exit_code == 1 and "not a dataset (no schema.yaml)" in nothing.stderr
    both = CliRunner().invoke(
        app,
        [
            "retrain",
            "--reason",
            "x",
            "--data",
            str(tmp_path),
            "--fresh-from",
            str(tmp_path),
        ],
    )
    assert both.exit_code == 1 and "not both" in both.stderr
    empty = CliRunner().invoke(app, ["retrain", "--reason", " "])
    assert empty.exit_code == 1 and "--reason must not be empty" in empty.stderr
    # none of the rejected requests above was recorded or audited
    after = json.loads(
        CliRunner().invoke(app, ["-o", "json", "triggers", "list"]).stdout
    )
    assert [d["reason"] for d in after if d["kind"] in ("manual", "code_change")] == [
        "new impeller batch",
        "features v2 (abc123)",
    ]
    audited = json.loads(
        CliRunner()
        .invoke(app, ["-o", "json", "audit", "list", "--kind", "trigger"])
        .stdout
    )
    assert not any(
        r["details"]["decision"]["reason"] in ("x", "drift", " ") for r in audited
    )
    bad_policy = tmp_path / "policy.yaml"
    bad_policy.write_text("consecutive: 0\n")
    refused = CliRunner().invoke(
        app, ["triggers", "evaluate", "--policy", str(bad_policy)]
    )
    assert refused.exit_code == 1 and "consecutive" in refused.stderr


@pytest.mark.kfp_local
def test_a_failed_retraining_leaves_the_champion_as_it_was(
    registry_with_champion, fleet_dir, tmp_path, monkeypatch
):
    import shutil

    shutil.copyfile(
        registry_with_champion["root"] / "mlflow.db", tmp_path / "mlflow.db"
    )
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(
        "EDGELOOP_REGISTRY__TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}"
    )
    broken = tmp_path / "broken"
    shutil.copytree(fleet_dir, broken)
    (broken / "maintenance_log.csv").write_text("pump_id,failed_at\np1,not a time\n")
    before = CliRunner().invoke(
        app, ["-o", "json", "models", "show", "pump-failure@champion"]
    )
    result = CliRunner().invoke(
        app, ["retrain", "--reason", "drift at desert-02", "--data", str(broken)]
    )
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("error: step 'validate-data' failed")
    )
    after = CliRunner().invoke(
        app, ["-o", "json", "models", "show", "pump-failure@champion"]
    )
    assert json.loads(after.stdout)["version"] == json.loads(before.stdout)["version"]
    assert (
        json.loads(CliRunner().invoke(app, ["-o", "json", "models", "list"]).stdout)[0][
            "versions"
        ]
        == 1
    )
