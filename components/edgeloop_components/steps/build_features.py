"""Step 2: windowed aggregates per entity, with the edge agent's feature code."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from edgeloop_components.images import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def build_features(
    validated: Input[Dataset],
    windows: list,
    aggregates: list,
    features: Output[Dataset],
) -> int:
    """Compute model inputs for every reading.

    Args:
        validated: output of validate_data.
        windows: window lengths in readings.
        aggregates: aggregates per window (mean, std, slope, max, min, last).
        features: the input table and its feature spec.
    """
    from pathlib import Path

    from edgeloop_components import tasks

    count = tasks.build_features(
        Path(validated.path),
        [int(w) for w in windows],
        list(aggregates),
        Path(features.path),
    )
    features.metadata["inputs"] = count
    return count
