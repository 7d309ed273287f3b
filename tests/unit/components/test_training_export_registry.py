import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from edgeloop_agent.contracts import bundle_digest, verify_bundle
from edgeloop_components import export, profiling, registration, tasks, training
from edgeloop_components.errors import SchemaError

from ...conftest import train_through_steps


def test_onnx_export_scores_like_xgboost():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 8)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    y = (np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1]) > 0).astype(int)
    model = training.train(x, y, training.TrainParams(n_estimators=30, max_depth=4))
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        export.to_onnx(model, 8, path)
        assert export.parity(model, path, x) <= 1e-5


def test_bundle_records_gates_lineage_and_reference(registry_with_champion):
    run = registry_with_champion["run"]
    manifest = verify_bundle(run.bundle_dir)
    names = [g.name for g in manifest.gates]
    assert names[:2] == ["min_roc_auc", "min_pr_auc"] and "onnx_parity" in names
    assert manifest.lineage.code_revision == "test"
    assert manifest.lineage.data_hash == run.ingest["data_hash"]
    assert [p.device_profile for p in manifest.latency] == [
        "gateway-small",
        "gateway-standard",
    ]
    ref = manifest.reference[0]
    assert sum(ref.counts) + ref.nan_count > 1000
    assert 0.0 <= manifest.output.threshold <= 1.0


def test_reference_sample_scores_reproduce_with_onnxruntime(registry_with_champion):
    run = registry_with_champion["run"]
    manifest = verify_bundle(run.bundle_dir)
    x = np.array(
        [
            [np.nan if v is None else v for v in row]
            for row in manifest.reference_sample.inputs
        ],
        dtype=np.float32,
    )
    scores = export.onnx_scores(export.session(run.bundle_dir / "model.onnx"), x)
    np.testing.assert_allclose(scores, manifest.reference_sample.scores, atol=1e-6)


def test_registered_version_has_aliases_tags_and_verified_bundle(
    registry_with_champion, tmp_path
):
    uri = registry_with_champion["uri"]
    reg = registry_with_champion["registered"]
    mlc = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mv = mlc.get_model_version_by_alias("pump-failure", "champion")
    assert int(mv.version) == reg["version"] == 1
    assert mv.tags["edgeloop.gates"] == "passed"
    assert mv.tags["edgeloop.parent_champion"] == "none"
    bundle = registration.download_bundle(mlc, "pump-failure", 1, tmp_path)
    assert (
        bundle_digest(bundle)
        == reg["bundle_sha256"]
        == mv.tags["edgeloop.bundle_sha256"]
    )
    assert (
        json.loads((bundle / "bundle.json").read_text())["lineage"]["mlflow_run_id"]
        == reg["run_id"]
    )
    # MLflow shows the lineage: the dataset, tags, int params, descriptions
    manifest = verify_bundle(bundle)
    run = mlc.get_run(reg["run_id"])
    (dataset,) = [d.dataset for d in run.inputs.dataset_inputs]
    assert dataset.digest == manifest.lineage.data_hash[:36]
    assert json.loads(dataset.source)["uri"] == manifest.lineage.dataset_uri
    assert [c["name"] for c in json.loads(dataset.schema)["mlflow_colspec"]] == [
        s.name for s in manifest.sensors
    ]
    tags = run.data.tags
    assert tags["edgeloop.code_revision"] == manifest.lineage.code_revision
    assert tags["edgeloop.pipeline_run_id"] == manifest.lineage.pipeline_run_id
    assert tags["edgeloop.parent_version"] == "none"
    assert (
        "by pipeline run" in mv.description and "Alarms at score >=" in mv.description
    )
    described = mlc.get_registered_model("pump-failure").description
    assert "edgeloop agent" in described
    # what it predicts, with the horizon named once
    horizon = manifest.output.horizon_hours
    assert f"probability of failure within {horizon:g} h for one" in described
    assert "challenger" not in mlc.get_registered_model("pump-failure").aliases


def test_failed_gate_registers_but_never_moves_champion(
    registry_with_champion, fleet_dir, tmp_path
):
    uri = f"sqlite:///{tmp_path / 'copy.db'}"
    shutil.copyfile(registry_with_champion["root"] / "mlflow.db", tmp_path / "copy.db")
    run = train_through_steps(
        fleet_dir, tmp_path / "run2", uri, policy={"min_roc_auc": 0.9999}
    )
    assert run.gate["parent_champion"] == "pump-failure:1"
    assert not run.bundle["gates_passed"]
    result = tasks.register_bundle(
        run.bundle_dir, uri, run.bundle["gates_passed"], True, {}
    )
    assert result["version"] == 2 and not result["promoted"]
    mlc = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert int(mlc.get_model_version_by_alias("pump-failure", "champion").version) == 1
    assert (
        int(mlc.get_model_version_by_alias("pump-failure", "challenger").version) == 2
    )
    assert (
        mlc.get_model_version("pump-failure", "2").tags["validation_status"]
        == "rejected"
    )


def test_challenger_passing_gates_becomes_champion_with_parent(
    registry_with_champion, fleet_dir, tmp_path
):
    uri = f"sqlite:///{tmp_path / 'copy.db'}"
    shutil.copyfile(registry_with_champion["root"] / "mlflow.db", tmp_path / "copy.db")
    run = train_through_steps(fleet_dir, tmp_path / "run3", uri)
    comparisons = [g for g in run.gate["gates"] if g["name"].startswith("vs_champion/")]
    assert comparisons and all(g["passed"] for g in comparisons)
    result = tasks.register_bundle(
        run.bundle_dir, uri, run.bundle["gates_passed"], True, {}
    )
    assert result["promoted"] and result["previous_champion"] == 1
    assert verify_bundle(run.bundle_dir).lineage.parent_champion == "pump-failure:1"
    mlc = MlflowClient(tracking_uri=uri, registry_uri=uri)
    # the champion alias moved to 2; no alias names 2 twice
    aliases = mlc.get_registered_model("pump-failure").aliases
    assert {k: int(v) for k, v in aliases.items()} == {"champion": 2}
    assert mlc.get_run(result["run_id"]).data.tags["edgeloop.parent_version"] == (
        "pump-failure:1"
    )


def test_device_profiles_file(tmp_path):
    path = tmp_path / "profiles.yaml"
    path.write_text(
        "profiles:\n  - {name: rpi4, arch: arm64, cores: 4, threads: 2, latency_budget_ms: 5}\n"
    )
    (prof,) = profiling.load_profiles(path)
    assert prof.name == "rpi4" and prof.threads == 2
    path.write_text("profiles:\n  - {name: rpi4, cores: zero}\n")
    with pytest.raises(SchemaError, match="invalid device profiles"):
        profiling.load_profiles(path)


def test_global_importance_is_in_the_bundle_and_in_mlflow(registry_with_champion):
    """Which sensors drive this version: gain and mean |SHAP|, per input and sensor."""
    uri = registry_with_champion["uri"]
    run = registry_with_champion["run"]
    manifest = verify_bundle(run.bundle_dir)
    assert manifest.importance is not None
    shares = manifest.importance.by_sensor
    assert set(shares) == set(manifest.features.sensors)
    assert abs(sum(shares.values()) - 1) < 1e-3 and all(v >= 0 for v in shares.values())
    names = manifest.features.input_names()
    assert list(manifest.importance.gain_by_input) == names
    assert max(manifest.importance.mean_abs_shap_by_input.values()) > 0
    # the sensors the simulator's failures show up in carry the most weight
    top = sorted(shares, key=lambda s: -shares[s])[:3]
    assert set(top) & {"vibration_rms", "bearing_temp"}, shares
    logged = MlflowClient(tracking_uri=uri).download_artifacts(
        registry_with_champion["registered"]["run_id"], "importance.json"
    )
    assert json.loads(Path(logged).read_text())["by_sensor"] == shares


def test_int_params_stay_ints_after_kfps_json():
    """KFP passes a dict parameter through JSON numbers: 300 arrives as 300.0."""
    logged = registration._params(
        {"n_estimators": 300.0, "max_depth": 4.0, "learning_rate": 0.1, "seed": 0.0}
    )
    assert logged == {
        "n_estimators": "300",
        "max_depth": "4",
        "learning_rate": "0.1",
        "seed": "0",
    }
