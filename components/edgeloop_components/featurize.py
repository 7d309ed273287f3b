"""Turn validated readings into a model-input table, one row per reading.

The arithmetic is :mod:`edgeloop_agent.features` (the one implementation the
edge agent also runs); this module only groups the table by entity and keeps
the key, slice and label columns next to the inputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from edgeloop_agent.contracts import FeatureSpec
from edgeloop_agent.features import rolling_features
from edgeloop_components.dataset import DatasetSchema
from edgeloop_components.validation import LABEL_COLUMN

DEFAULT_WINDOWS = (12,)
DEFAULT_AGGREGATES = ("last", "mean", "std", "slope")


def feature_spec(
    schema: DatasetSchema,
    windows: tuple[int, ...] | list[int] = DEFAULT_WINDOWS,
    aggregates: tuple[str, ...] | list[str] = DEFAULT_AGGREGATES,
) -> FeatureSpec:
    """The feature spec for a schema's sensors (validated by the contract)."""
    return FeatureSpec.model_validate(
        {
            "sensors": schema.feature_names(),
            "windows": list(windows),
            "aggregates": list(aggregates),
        }
    )


def key_columns(schema: DatasetSchema) -> list[str]:
    """Columns carried beside the inputs: entity, time, slices."""
    cols = [schema.entity_column, schema.time_column]
    return cols + [s for s in schema.slices if s not in cols]


def build_features(
    frame: pd.DataFrame, schema: DatasetSchema, spec: FeatureSpec
) -> pd.DataFrame:
    """Inputs for every reading, computed per entity in time order.

    Args:
        frame: validated readings sorted by (entity, time), with ``__label__``.
        schema: the dataset contract.
        spec: which windows and aggregates.

    Returns:
        Key + slice columns, ``__label__`` (when present) and one float32
        column per model input, in ``spec.input_names()`` order.
    """
    names = spec.input_names()
    sensors = list(spec.sensors)
    values = frame[sensors].to_numpy(dtype=np.float64, na_value=np.nan)
    inputs = np.empty((len(frame), len(names)), dtype=np.float32)
    entity = frame[schema.entity_column].to_numpy()
    # frame is sorted by entity, so each entity is one contiguous block.
    boundaries = np.flatnonzero(entity[1:] != entity[:-1]) + 1
    for rows in np.split(np.arange(len(frame)), boundaries):
        if len(rows):
            inputs[rows] = rolling_features(values[rows], spec)
    keep = key_columns(schema) + ([LABEL_COLUMN] if LABEL_COLUMN in frame else [])
    out = frame[keep].reset_index(drop=True)
    return pd.concat([out, pd.DataFrame(inputs, columns=names)], axis=1)
