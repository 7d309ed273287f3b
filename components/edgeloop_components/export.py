"""XGBoost -> ONNX export and the parity check that guards it.

onnxmltools supports opset <= 15 for this converter (a higher ``target_opset``
raises), so the default is left to the converter. The booster's feature names
are cleared first: the converter only accepts the ``f0, f1, …`` pattern.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import xgboost as xgb
from onnxmltools.convert import convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType

INPUT_NAME = "input"


def to_onnx(model: xgb.XGBClassifier, n_inputs: int, path: Path) -> None:
    """Convert and write ``model.onnx`` (float32 input named ``input``)."""
    model.get_booster().feature_names = None
    proto = convert_xgboost(
        model, initial_types=[(INPUT_NAME, FloatTensorType([None, n_inputs]))]
    )
    Path(path).write_bytes(proto.SerializeToString())


def session(path: Path, threads: int = 1) -> ort.InferenceSession:
    """A CPU session with a fixed thread count (what an edge device gets)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_scores(sess: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    """Positive-class probability from the exported model."""
    outputs = sess.run(
        ["probabilities"], {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)}
    )
    return np.asarray(outputs[0][:, 1], dtype=np.float64)


def parity(model: xgb.XGBClassifier, onnx_path: Path, x: np.ndarray) -> float:
    """Max |p_onnx - p_xgb| over ``x``."""
    expected = model.predict_proba(x)[:, 1]
    actual = onnx_scores(session(onnx_path), x)
    return float(np.max(np.abs(actual - expected))) if len(x) else 0.0
