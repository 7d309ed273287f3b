"""Step 4: train the XGBoost classifier."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from edgeloop_components.images import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def train_model(split: Input[Dataset], params: dict, model: Output[Model]) -> None:
    """Fit XGBoost on the training split.

    Args:
        split: output of split_data.
        params: XGBoost hyper-parameters (n_estimators, max_depth, learning_rate, ...).
        model: the model in XGBoost JSON format.
    """
    from pathlib import Path

    from edgeloop_components import tasks

    tasks.train_model(Path(split.path), dict(params), Path(model.path))
    model.metadata.update({"framework": "xgboost", **params})
