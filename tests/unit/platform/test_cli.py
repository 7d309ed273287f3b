import json
import shutil
import subprocess

import pytest
import yaml
from typer.testing import CliRunner

from edgeloop.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def assert_one_line_error(result, *fragments: str) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


@pytest.fixture()
def registry_env(registry_with_champion, tmp_path, monkeypatch):
    """A private copy of the session registry, so commands may change it."""
    shutil.copyfile(
        registry_with_champion["root"] / "mlflow.db", tmp_path / "mlflow.db"
    )
    monkeypatch.setenv(
        "EDGELOOP_REGISTRY__TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}"
    )
    return registry_with_champion


def test_help_lists_the_nouns():
    result = run("--help")
    assert result.exit_code == 0
    for noun in ("data", "pipeline", "models", "demo"):
        assert noun in result.stdout


def test_simulate_then_validate(tmp_path):
    out = tmp_path / "fleet"
    result = run(
        "-o",
        "json",
        "data",
        "simulate",
        "--out",
        str(out),
        "--sites",
        "2",
        "--pumps-per-site",
        "3",
        "--days",
        "20",
        "--perturb",
        "ambient_shift@offshore-01:0.5",
        "--perturb",
        "sensor_faults",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["pumps"] == 6 and summary["readings"] > 10_000
    assert (out / "schema.yaml").is_file()
    result = run("-o", "json", "data", "validate", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["valid"] is True


@pytest.mark.parametrize(
    "perturb, fragment",
    [
        ("heatwave", "KIND one of ambient_shift"),
        ("ambient_shift:1.5", "START must be in 0..1"),
        ("ambient_shift@atlantis-09", "unknown site(s) atlantis-09"),
    ],
)
def test_simulate_rejects_bad_perturbations(tmp_path, perturb, fragment):
    result = run("data", "simulate", "--out", str(tmp_path / "x"), "--perturb", perturb)
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "x").exists()


def test_simulate_rejects_out_of_range_sizes(tmp_path):
    result = run("data", "simulate", "--out", str(tmp_path), "--sites", "0")
    assert result.exit_code == 2 and "Invalid value" in result.stderr


def test_validate_reports_each_violation_and_exits_1(fleet_dir, tmp_path):
    import pandas as pd

    shutil.copytree(fleet_dir, tmp_path / "d")
    frame = pd.read_parquet(tmp_path / "d" / "readings.parquet").drop(
        columns=["speed_rpm"]
    )
    frame.to_parquet(tmp_path / "d" / "readings.parquet")
    result = run("data", "validate", str(tmp_path / "d"))
    assert_one_line_error(result, "readings.parquet: missing columns: speed_rpm")


def test_validate_with_an_explicit_broken_schema(fleet_dir, tmp_path):
    schema = tmp_path / "s.yaml"
    schema.write_text(yaml.safe_dump({"entity_column": "pump_id"}))
    result = run(
        "data", "validate", str(fleet_dir / "readings.parquet"), "--schema", str(schema)
    )
    assert_one_line_error(result, "s.yaml: features: Field required")


def test_validate_missing_path():
    assert_one_line_error(
        run("data", "validate", "/nonexistent/data"), "no such file or directory"
    )


def test_models_list_and_show(registry_env):
    result = run("-o", "json", "models", "list")
    assert result.exit_code == 0, result.output
    (model,) = json.loads(result.stdout)
    assert model == {
        "name": "pump-failure",
        "versions": 1,
        "latest": 1,
        "champion": 1,
        "challenger": None,  # promoted: champion only, never both
    }
    shown = json.loads(
        run("-o", "json", "models", "show", "pump-failure@champion").stdout
    )
    assert shown["version"] == 1 and shown["aliases"] == ["champion"]
    assert shown["bundle_sha256"] == registry_env["registered"]["bundle_sha256"]
    assert (
        shown["bundle_uri"].startswith("runs:/") and shown["metrics"]["roc_auc"] > 0.5
    )
    # readable time, every gate with its detail, the alarm threshold
    assert shown["created"].endswith("+00:00") and "T" in shown["created"]
    gates = {g["gate"]: g for g in shown["gate_results"]}
    assert {"min_roc_auc", "onnx_parity"} <= set(gates)
    assert all(g["detail"] for g in gates.values())
    assert 0 < shown["alarm_threshold"] < 1
    table = run("models", "show", "pump-failure:1")
    assert table.exit_code == 0 and "bundle_sha256" in table.stdout
    assert "gates" in table.stdout and "min_roc_auc" in table.stdout


def test_models_promote_moves_alias_and_reports_previous(registry_env):
    result = run(
        "-o", "json", "models", "promote", "pump-failure:1", "--alias", "staging"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "name": "pump-failure",
        "alias": "staging",
        "version": 1,
        "previous": None,
    }
    assert (
        json.loads(run("-o", "json", "models", "show", "pump-failure@staging").stdout)[
            "version"
        ]
        == 1
    )
    # promoting a challenger to champion takes its challenger alias away
    assert (
        run("models", "promote", "pump-failure:1", "--alias", "challenger").exit_code
        == 0
    )
    assert (
        run("models", "promote", "pump-failure:1", "--alias", "champion").exit_code == 0
    )
    shown = json.loads(run("-o", "json", "models", "show", "pump-failure:1").stdout)
    assert shown["aliases"] == ["champion", "staging"]


def test_models_lineage(registry_env):
    result = run("-o", "json", "models", "lineage", "pump-failure")
    assert result.exit_code == 0, result.output
    lineage = json.loads(result.stdout)
    run_info = registry_env["run"]
    assert lineage["data_hash"] == run_info.ingest["data_hash"]
    assert lineage["code_revision"] == "test"
    assert lineage["mlflow_run_id"] == registry_env["registered"]["run_id"]
    assert lineage["parent_champion"] == ""
    assert {g["name"] for g in lineage["gates"]} >= {"min_roc_auc", "onnx_parity"}


def test_models_export_writes_verifiable_files(registry_env, tmp_path):
    out = tmp_path / "usb"
    result = run(
        "-o", "json", "models", "export", "pump-failure@champion", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "SHA256SUMS",
        "bundle.json",
        "desired-model.json",
        "model.onnx",
    ]
    record = json.loads((out / "desired-model.json").read_text())
    assert (
        record["version"] == "1"
        and record["bundle_sha256"] == registry_env["registered"]["bundle_sha256"]
    )
    check = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert (
        json.loads(result.stdout)["bundle_sha256"]
        == registry_env["registered"]["bundle_sha256"]
    )
    again = run("models", "export", "pump-failure@champion", "--out", str(out))
    assert_one_line_error(again, "directory is not empty")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("models", "show", "pump failure"), "invalid model reference 'pump failure'"),
        (("models", "show", "pump-failure:0"), "version >= 1"),
        (("models", "show", "nope"), "not found"),
        (("models", "show", "pump-failure:7"), "not found"),
        (("models", "show", "pump-failure@ghost"), "not found"),
        (
            ("models", "promote", "pump-failure", "--alias", "champion"),
            "needs an explicit version",
        ),
        (("models", "promote", "pump-failure:1", "--alias", "9lives"), "invalid alias"),
    ],
)
def test_models_bad_input(registry_env, args, fragment):
    assert_one_line_error(run(*args), fragment)


def test_pipeline_compile(tmp_path):
    result = run("-o", "json", "pipeline", "compile", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)
    compiled = yaml.safe_load((tmp_path / "train-edge-model.yaml").read_text())
    assert entry["pipeline"] == "train-edge-model"
    assert compiled["pipelineInfo"]["name"] == "train-edge-model"
    executors = compiled["deploymentSpec"]["executors"]
    assert len(executors) == 10
    for spec in executors.values():
        assert spec["container"]["image"].startswith(
            "ghcr.io/edgeloop/edgeloop-components:"
        )
        assert "pip install" not in " ".join(spec["container"]["command"])


def test_pipeline_compile_pins_every_step_to_the_pushed_digest(tmp_path):
    pushed = "registry.site:5000/edgeloop/edgeloop-components@sha256:" + "ab" * 32
    digests = tmp_path / "digests.json"
    digests.write_text(json.dumps({"components": pushed}))
    result = run(
        "pipeline",
        "compile",
        "--out",
        str(tmp_path / "ir"),
        "--image-digests",
        str(digests),
    )
    assert result.exit_code == 0, result.output
    compiled = yaml.safe_load((tmp_path / "ir" / "train-edge-model.yaml").read_text())
    images = {
        spec["container"]["image"]
        for spec in compiled["deploymentSpec"]["executors"].values()
    }
    assert images == {pushed}


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("--image", "ghcr.io/edgeloop/edgeloop-components:0.1.0"), "pinned by digest"),
        (("--image-digests", "/nonexistent/digests.json"), "cannot read image digests"),
    ],
)
def test_pipeline_compile_refuses_unpinned_images(tmp_path, args, fragment):
    result = run("pipeline", "compile", "--out", str(tmp_path), *args)
    assert_one_line_error(result, fragment)


def test_pipeline_run_rejects_missing_data(tmp_path):
    assert_one_line_error(
        run("pipeline", "run", "--data", str(tmp_path / "none")), "no such dataset"
    )


def test_the_demo_summary_line_says_failures_lead_and_false_alarms():
    from edgeloop.demo.summary import holdout_events

    line = holdout_events(
        {
            "event_recall": 0.5,
            "median_lead_hours": 45.3,
            "false_alarms_per_asset_month": 0.25,
        },
        0.99971,
    )
    assert line == (
        "holdout: 50% of failures alarmed (median lead 45 h), "
        "0.2 false alarms per pump-month, threshold 0.9997"
    )
    assert "failures alarmed n/a" in holdout_events({}, None)


def test_lineage_table_fits_80_columns_without_json_in_cells(registry_env):
    narrow = CliRunner(env={"COLUMNS": "80"})
    table = narrow.invoke(app, ["models", "lineage", "pump-failure"])
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= 80
    assert '{"' not in table.stdout and "[{" not in table.stdout
    assert "gates[0].name" in table.stdout  # nested data as dotted keys
    data_hash = registry_env["run"].ingest["data_hash"]
    assert data_hash not in table.stdout and data_hash[:17] in table.stdout  # elided
    wide = CliRunner(env={"COLUMNS": "400"}).invoke(
        app, ["models", "lineage", "pump-failure", "--wide"]
    )
    assert wide.exit_code == 0 and data_hash in wide.stdout
    assert (
        wide.stdout
        == CliRunner(env={"COLUMNS": "400"})
        .invoke(app, ["models", "lineage", "pump-failure", "-o", "wide"])
        .stdout
    )


def test_long_names_are_elided_in_the_middle():
    from edgeloop.cli.output import elide

    name = "offshore-platform-north-sea-07-gateway-113"
    short = elide(name, 21)
    assert len(short) == 21 and short.startswith("offshore-") and short.endswith("113")
    assert elide("desert-02", 21) == "desert-02"
