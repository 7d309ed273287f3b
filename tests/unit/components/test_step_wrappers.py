"""Each KFP wrapper called through ``python_func`` with stand-in artifacts."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeloop_agent.contracts import RegisteredModel
from edgeloop_components.steps.build_bundle import build_bundle
from edgeloop_components.steps.build_features import build_features
from edgeloop_components.steps.evaluate_model import evaluate_model
from edgeloop_components.steps.export_onnx import export_onnx
from edgeloop_components.steps.gate_model import gate_model
from edgeloop_components.steps.profile_latency import profile_latency
from edgeloop_components.steps.register_model import register_model
from edgeloop_components.steps.split_data import split_data
from edgeloop_components.steps.train_model import train_model
from edgeloop_components.steps.validate_data import validate_data


@dataclass
class FakeArtifact:
    path: str
    metadata: dict[str, Any] = field(default_factory=dict)
    logged: dict[str, float] = field(default_factory=dict)

    def log_metric(self, key: str, value: float) -> None:
        self.logged[key] = value


def art(tmp_path: Path, name: str) -> FakeArtifact:
    return FakeArtifact(str(tmp_path / name))


def test_every_wrapper_maps_artifacts_and_returns_its_outputs(fleet_dir, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    validated = art(tmp_path, "validated")
    ingest = validate_data.python_func(
        data_uri=str(fleet_dir), schema_path="", validated=validated
    )
    assert json.loads(ingest)["rows"] == validated.metadata["rows"] > 0

    features = art(tmp_path, "features")
    assert (
        build_features.python_func(
            validated=validated,
            windows=[6],
            aggregates=["mean", "max"],
            features=features,
        )
        == 16
    )

    split = art(tmp_path, "split")
    counts = split_data.python_func(
        features=features,
        holdout_entity_fraction=0.3,
        holdout_time_fraction=0.4,
        seed=0,
        split=split,
    )
    assert counts["train"] > 0 and counts["holdout"] > 0

    model = art(tmp_path, "model")
    train_model.python_func(
        split=split, params={"n_estimators": 20, "max_depth": 3}, model=model
    )
    assert Path(model.path).is_file() and model.metadata["framework"] == "xgboost"

    metrics = art(tmp_path, "metrics")
    report = evaluate_model.python_func(
        split=split,
        model=model,
        threshold_policy={"target_precision": 0.8},
        metrics=metrics,
    )
    assert metrics.logged["roc_auc"] == json.loads(report)["overall"]["roc_auc"]

    gate = gate_model.python_func(
        validated=validated,
        split=split,
        report=report,
        tracking_uri=uri,
        model_name="pump-failure",
        policy={"min_roc_auc": 0.5},
    )
    assert json.loads(gate)["parent_champion"] == ""

    onnx_model = art(tmp_path, "onnx")
    parity = export_onnx.python_func(model=model, split=split, onnx_model=onnx_model)
    assert parity == onnx_model.metadata["parity_max_abs_diff"] <= 1e-5

    latency = profile_latency.python_func(
        onnx_model=onnx_model, split=split, profiles_path=""
    )
    assert {p["device_profile"] for p in json.loads(latency)} == {
        "gateway-small",
        "gateway-standard",
    }

    bundle = art(tmp_path, "bundle")
    passed = build_bundle.python_func(
        onnx_model=onnx_model,
        split=split,
        report=report,
        gate_result=gate,
        parity=parity,
        parity_tolerance=1e-5,
        latency=latency,
        ingest=ingest,
        model_name="pump-failure",
        code_revision="abc",
        pipeline_run_id="run-x",
        bundle=bundle,
    )
    assert passed is bundle.metadata["gates_passed"]
    assert (Path(bundle.path) / "bundle.json").is_file()

    registered = register_model.python_func(
        bundle=bundle,
        tracking_uri=uri,
        gates_passed=passed,
        auto_promote=True,
        params={"n_estimators": 20},
    )
    assert registered["version"] == 1 and registered["promoted"] is passed
    # the dict output is exactly the platform's typed seam
    assert RegisteredModel.model_validate(registered).ref == "pump-failure:1"
