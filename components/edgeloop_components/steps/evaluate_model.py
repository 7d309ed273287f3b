"""Step 5: holdout metrics overall and per slice."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from edgeloop_components.images import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def evaluate_model(
    split: Input[Dataset],
    model: Input[Model],
    threshold_policy: dict,
    metrics: Output[Metrics],
) -> str:
    """Row and event metrics on the holdout, the alarm threshold by the policy.

    Args:
        split: output of split_data.
        model: output of train_model.
        threshold_policy: target_precision, max_false_alarms_per_asset_month
            (negative: no budget) and min_lead_hours.
        metrics: overall metrics, shown in the Kubeflow UI.

    Returns:
        JSON report: overall and per-slice metrics (null where not computable).
    """
    from pathlib import Path

    from edgeloop_components import tasks

    policy = dict(threshold_policy)
    budget = policy.get("max_false_alarms_per_asset_month")
    if budget is not None and float(budget) < 0:
        policy["max_false_alarms_per_asset_month"] = None
    report = tasks.evaluate_model(Path(split.path), Path(model.path), policy)
    for key, value in report["overall"].items():
        if isinstance(value, (int, float)):
            metrics.log_metric(key, float(value))
    return tasks.dumps(report)
