"""Step 5: holdout metrics overall and per slice."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from edgeloop_components.images import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def evaluate_model(
    split: Input[Dataset],
    model: Input[Model],
    target_precision: float,
    metrics: Output[Metrics],
) -> str:
    """ROC-AUC, PR-AUC and recall at a fixed precision on the holdout.

    Args:
        split: output of split_data.
        model: output of train_model.
        target_precision: precision at which recall is reported.
        metrics: overall metrics, shown in the Kubeflow UI.

    Returns:
        JSON report: overall and per-slice metrics (null where not computable).
    """
    from pathlib import Path

    from edgeloop_components import tasks

    report = tasks.evaluate_model(Path(split.path), Path(model.path), target_precision)
    for key, value in report["overall"].items():
        if value is not None:
            metrics.log_metric(key, float(value))
    return tasks.dumps(report)
