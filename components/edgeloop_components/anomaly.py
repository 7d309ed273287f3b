"""The anomaly model: for sensor history without failure labels.

Most plants start with years of sensor data and no failure records. An
IsolationForest (behind a median imputer: edge inputs have gaps) learns what
normal operation looks like; its score is turned into ``[0, 1]`` and exported
to ONNX with the *same outputs as the classifier* (``label``, ``probabilities``
``[n, 2]``), so the same agent serves it with no change: drift, data quality,
alarms, reports.

Score: ``p = sigmoid(-decision / scale)``, where ``decision`` is the forest's
decision function (negative for anomalies) and ``scale`` its spread on the
training rows; 0.5 is the forest's own boundary. The alarm threshold is the
score exceeded by ``target_alarm_rate`` of the training rows: with no labels,
the alarm rate is what a user can budget.

Gates (no labels, so no precision): the holdout's alarm rate stays within
``max_alarm_rate_ratio`` × the target (the model generalises to unseen
machines and a later period), and the ranking is *stable*: a forest with
another seed ranks the holdout rows alike (Spearman ≥ ``min_stability``).
"""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import onnx
from onnx import TensorProto, helper
from scipy.stats import spearmanr
from skl2onnx import to_onnx as skl_to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

INPUT_NAME = "input"
OPSETS = {"": 15, "ai.onnx.ml": 3}
"""The opsets the agent's onnxruntime and the classifier export use."""


class AnomalyModel:
    """The fitted pipeline and the scale that maps its decision to ``[0, 1]``."""

    def __init__(self, pipeline: Pipeline, scale: float) -> None:
        self.pipeline = pipeline
        self.scale = scale

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Anomaly score in ``[0, 1]`` per row."""
        decision = self.pipeline.decision_function(np.asarray(x, dtype=np.float32))
        return np.asarray(1.0 / (1.0 + np.exp(decision / self.scale)), dtype=np.float64)


def train(x: np.ndarray, n_estimators: int, seed: int) -> AnomalyModel:
    """Fit imputer + forest on unlabeled rows."""
    pipeline = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            (
                "forest",
                IsolationForest(n_estimators=n_estimators, random_state=seed, n_jobs=1),
            ),
        ]
    ).fit(np.asarray(x, dtype=np.float32))
    spread = float(np.std(pipeline.decision_function(np.asarray(x, dtype=np.float32))))
    return AnomalyModel(pipeline, max(spread, 1e-6))


def save(model: AnomalyModel, path: Path) -> None:
    """Between steps of one run only (joblib); what ships is the ONNX export."""
    joblib.dump({"pipeline": model.pipeline, "scale": model.scale}, path)


def load(path: Path) -> AnomalyModel:
    """Read what :func:`save` wrote in an earlier step of the same run."""
    data = joblib.load(path)
    return AnomalyModel(data["pipeline"], float(data["scale"]))


def threshold_for(train_scores: np.ndarray, target_alarm_rate: float) -> float:
    """The score exceeded by ``target_alarm_rate`` of the training rows."""
    return float(np.quantile(train_scores, 1.0 - target_alarm_rate))


def stability(
    model: AnomalyModel, train_x: np.ndarray, holdout_x: np.ndarray, seed: int
) -> float:
    """Spearman correlation of holdout scores between this forest and one with another seed."""
    n_estimators = model.pipeline.named_steps["forest"].n_estimators
    other = train(train_x, n_estimators, seed + 1)
    rho = spearmanr(model.scores(holdout_x), other.scores(holdout_x)).statistic
    return float(rho) if np.isfinite(rho) else 0.0


def to_onnx(model: AnomalyModel, n_inputs: int, path: Path) -> None:
    """Export with the classifier's outputs: ``probabilities`` [n, 2] and ``label`` [n]."""
    proto = skl_to_onnx(
        model.pipeline,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_inputs]))],
        target_opset=OPSETS,
        options={IsolationForest: {"score_samples": False}},
    )
    graph = proto.graph
    decision = next(o.name for o in graph.output if o.name == "scores")
    for node in graph.node:  # free the name "label" for the classifier-style output
        node.output[:] = ["forest_label" if n == "label" else n for n in node.output]
        node.input[:] = ["forest_label" if n == "label" else n for n in node.input]
    scale = helper.make_tensor(
        "edgeloop_neg_inv_scale", TensorProto.FLOAT, [], [-1.0 / model.scale]
    )
    one = helper.make_tensor("edgeloop_one", TensorProto.FLOAT, [], [1.0])
    graph.initializer.extend([scale, one])
    graph.node.extend(
        [
            helper.make_node("Mul", [decision, scale.name], ["edgeloop_logit"]),
            helper.make_node("Sigmoid", ["edgeloop_logit"], ["edgeloop_anomaly"]),
            helper.make_node(
                "Sub", [one.name, "edgeloop_anomaly"], ["edgeloop_normal"]
            ),
            helper.make_node(
                "Concat",
                ["edgeloop_normal", "edgeloop_anomaly"],
                ["probabilities"],
                axis=1,
            ),
            helper.make_node(
                "ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0
            ),
        ]
    )
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info(
                "probabilities", TensorProto.FLOAT, [None, 2]
            ),
        ]
    )
    onnx.checker.check_model(proto)
    Path(path).write_bytes(proto.SerializeToString())
