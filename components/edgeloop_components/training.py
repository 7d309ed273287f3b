"""Train the XGBoost classifier on the training split.

Hyper-parameters come in as arguments (pipeline parameters); nothing is read
from the environment, so a pipeline run is reproducible from its parameters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xgboost as xgb
from pydantic import BaseModel, ConfigDict, Field


class TrainParams(BaseModel):
    """XGBoost settings exposed as pipeline parameters."""

    model_config = ConfigDict(extra="forbid")

    n_estimators: int = Field(200, ge=1, le=5000)
    max_depth: int = Field(4, ge=1, le=16)
    learning_rate: float = Field(0.1, gt=0, le=1)
    subsample: float = Field(0.9, gt=0, le=1)
    colsample_bytree: float = Field(0.9, gt=0, le=1)
    seed: int = 0
    n_jobs: int = Field(2, ge=1)
    dropout_share: float = Field(0.2, ge=0, le=2)
    """Extra training rows with one sensor dropped, as a share of the training
    rows (:mod:`edgeloop_components.dropout`); 0 turns augmentation off."""


def train(x: np.ndarray, y: np.ndarray, params: TrainParams) -> xgb.XGBClassifier:
    """Fit a binary classifier; class imbalance is weighted from the data."""
    positives = float(y.sum())
    weight = (len(y) - positives) / positives if positives else 1.0
    model = xgb.XGBClassifier(
        n_estimators=params.n_estimators,
        max_depth=params.max_depth,
        learning_rate=params.learning_rate,
        subsample=params.subsample,
        colsample_bytree=params.colsample_bytree,
        random_state=params.seed,
        n_jobs=params.n_jobs,
        tree_method="hist",
        scale_pos_weight=weight,
        eval_metric="aucpr",
    )
    model.fit(x, y)
    return model


def save(model: xgb.XGBClassifier, path: Path) -> None:
    """Persist in XGBoost's UBJSON format (binary: split values kept exactly).

    XGBoost picks the format from the file name's extension; KFP's artifact
    paths have none (XGBoost then guessed UBJSON and warned through a ctypes
    callback), so the model is written under a ``.ubj`` name and moved into
    place: the same bytes as before, without the warning.
    """
    path = Path(path)
    staged = path.with_name(path.name + ".ubj")
    model.save_model(str(staged))
    staged.replace(path)


def load(path: Path) -> xgb.XGBClassifier:
    """Load a model saved by :func:`save` (read as bytes: the format is in the content)."""
    model = xgb.XGBClassifier()
    model.load_model(bytearray(Path(path).read_bytes()))
    return model


def predict(model: xgb.XGBClassifier, x: np.ndarray) -> np.ndarray:
    """Probability of the positive class."""
    return np.asarray(model.predict_proba(x)[:, 1], dtype=np.float64)
