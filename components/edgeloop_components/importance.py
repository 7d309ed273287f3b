"""Global feature importance per model version, by input and by sensor.

Two views, stored in the bundle and logged to MLflow (``importance.json``):
XGBoost's *gain* (how much each input's splits improved the training loss)
and the mean absolute *SHAP* value on the holdout (XGBoost's exact
TreeSHAP, ``pred_contribs``: how much each input moved the scores the model
actually produced). Inputs are summed back to their sensor, because a
technician inspects a sensor, not ``vibration_rms__slope_w12``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xgboost as xgb

from edgeloop_agent.contracts import FeatureSpec


def shap_values(model: xgb.XGBClassifier, x: np.ndarray) -> np.ndarray:
    """Per row and input, TreeSHAP contributions to the margin (bias column dropped)."""
    contribs = model.get_booster().predict(
        xgb.DMatrix(np.asarray(x, dtype=np.float32)), pred_contribs=True
    )
    return np.asarray(contribs[:, :-1], dtype=np.float64)


def by_sensor(values: np.ndarray, spec: FeatureSpec) -> dict[str, float]:
    """Per-input values (1-D, input order) summed over each sensor's inputs."""
    names = spec.input_names()
    return {
        sensor: float(
            sum(values[i] for i, n in enumerate(names) if n.startswith(f"{sensor}__"))
        )
        for sensor in spec.sensors
    }


def global_importance(
    model: xgb.XGBClassifier, x: np.ndarray, spec: FeatureSpec
) -> dict[str, Any]:
    """Gain and mean |SHAP| per input, and mean |SHAP| per sensor as shares summing to 1."""
    names = spec.input_names()
    gain_raw = model.get_booster().get_score(importance_type="gain")
    gain = [_number(gain_raw.get(f"f{i}", 0.0)) for i in range(len(names))]
    mean_abs = (
        np.abs(shap_values(model, x)).mean(axis=0) if len(x) else np.zeros(len(names))
    )
    sensors = by_sensor(mean_abs, spec)
    total = sum(sensors.values()) or 1.0
    return {
        "by_sensor": {s: round(v / total, 6) for s, v in sensors.items()},
        "gain_by_input": {
            n: round(float(g), 6) for n, g in zip(names, gain, strict=True)
        },
        "mean_abs_shap_by_input": {
            n: round(float(v), 6) for n, v in zip(names, mean_abs, strict=True)
        },
    }


def _number(value: float | list[float]) -> float:
    """XGBoost's score values are floats (lists only for multi-output models)."""
    return float(value[0]) if isinstance(value, list) else float(value)
