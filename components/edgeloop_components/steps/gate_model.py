"""Step 6: gate the challenger against floors and the current champion."""

from kfp import dsl
from kfp.dsl import Dataset, Input

from edgeloop_components.images import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def gate_model(
    validated: Input[Dataset],
    split: Input[Dataset],
    report: str,
    tracking_uri: str,
    model_name: str,
    policy: dict,
) -> str:
    """Compare with the champion on the same holdout rows, overall and per slice.

    Args:
        validated: output of validate_data (to recompute the champion's features).
        split: output of split_data.
        report: output of evaluate_model (JSON).
        tracking_uri: MLflow tracking/registry URI.
        model_name: registered model name.
        policy: gate thresholds (primary_metric, max_regression, min_roc_auc,
            min_pr_auc, min_event_recall, dropout_max_ratio; a negative optional
            floor turns its gate off).
    """
    import json
    from pathlib import Path

    from edgeloop_components import tasks

    result = tasks.gate_vs_champion(
        Path(validated.path),
        Path(split.path),
        json.loads(report),
        tracking_uri,
        model_name,
        {
            key: value
            for key, value in dict(policy).items()
            if not (key == "min_event_recall" and float(value) < 0)
        },
    )
    return tasks.dumps(result)
