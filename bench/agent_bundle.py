"""The serving benchmark's model: a bundle around a fixed XGBoost model, and OIP request bodies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def build_bundle(work: Path) -> tuple[Path, np.ndarray]:
    """A bundle around a 200-tree, depth-6, 20-input XGBoost model."""
    from edgeloop_agent.contracts import Lineage
    from edgeloop_components import export, packaging, training
    from edgeloop_components.dataset import (
        DatasetSchema,
        FailureLogLabel,
        FeatureColumn,
    )
    from edgeloop_components.featurize import feature_spec

    schema = DatasetSchema(
        entity_column="pump",
        time_column="t",
        features=[FeatureColumn(name=f"s{i}", min=-100, max=100) for i in range(5)],
        label=FailureLogLabel(
            path="x.csv", entity_column="pump", time_column="t", horizon_hours=1
        ),
    )
    spec = feature_spec(schema, [12], ["last", "mean", "std", "slope"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 20)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] - x[:, 2] * x[:, 3] > 0.3).astype(int)
    model = training.train(x, y, training.TrainParams(n_estimators=200, max_depth=6))
    export.to_onnx(model, 20, work / "model.onnx")
    scores = export.onnx_scores(export.session(work / "model.onnx"), x)
    packaging.write_bundle(
        work / "bundle",
        model_name="bench",
        onnx_path=work / "model.onnx",
        spec=spec,
        schema=schema,
        threshold=0.5,
        horizon_hours=1,
        train_x=x,
        sample=packaging.reference_sample(x, scores, 50, 0),
        metrics={},
        gates=[],
        latency=[],
        lineage=Lineage(
            data_hash="bench", code_revision="bench", pipeline_run_id="bench"
        ),
    )
    return work / "bundle", x


def oip(rows: np.ndarray) -> bytes:
    return json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(rows.shape),
                    "datatype": "FP32",
                    "data": rows.reshape(-1).tolist(),
                }
            ]
        }
    ).encode()
