"""Step 3: holdout split by entity and by time."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from edgeloop_components.images import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def split_data(
    features: Input[Dataset],
    holdout_entity_fraction: float,
    holdout_time_fraction: float,
    seed: int,
    split: Output[Dataset],
    holdout_from: str = "",
) -> dict:
    """Split rows into train and holdout with no entity or period shared.

    Args:
        features: output of build_features.
        holdout_entity_fraction: share of entities held out.
        holdout_time_fraction: share of the period (the latest) held out.
        seed: seed for the entity choice.
        split: train.parquet and holdout.parquet.
        holdout_from: ISO time; retraining mode (training pumps keep their
            fresh rows, the holdout starts at this time).
    """
    from pathlib import Path

    from edgeloop_components import tasks

    counts = tasks.split_data(
        Path(features.path),
        holdout_entity_fraction,
        holdout_time_fraction,
        seed,
        Path(split.path),
        holdout_from,
    )
    split.metadata.update(counts)
    return counts
