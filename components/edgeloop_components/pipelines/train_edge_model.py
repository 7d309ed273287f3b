"""``train-edge-model``: sensor data -> validated, gated, registered edge model.

ingest+validate -> features -> split -> train -> evaluate -> gate vs champion
-> export ONNX (+ parity) -> latency profile -> bundle -> register in MLflow.
"""

from kfp import dsl

from edgeloop_components.steps.build_bundle import build_bundle
from edgeloop_components.steps.build_features import build_features
from edgeloop_components.steps.evaluate_model import evaluate_model
from edgeloop_components.steps.export_onnx import export_onnx
from edgeloop_components.steps.gate_model import gate_model
from edgeloop_components.steps.profile_latency import profile_latency
from edgeloop_components.steps.register_model import register_model
from edgeloop_components.steps.split_data import split_data
from edgeloop_components.steps.train_model import train_model
from edgeloop_components.steps.validate_data import validate_data

PIPELINE_NAME = "train-edge-model"


# Long on purpose: a KFP pipeline's graph must be one decorated function; each
# step is one call (the docstring becomes the pipeline's description in the IR).
@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Train, gate and register an edge-ready XGBoost/ONNX model.",
)
def train_edge_model(
    data_uri: str,
    tracking_uri: str,
    schema_path: str = "",
    labels_uri: str = "",
    model_name: str = "pump-failure",
    windows: list = [12],  # noqa: B006 - KFP pipeline defaults must be literals
    aggregates: list = ["last", "mean", "std", "slope"],  # noqa: B006
    holdout_entity_fraction: float = 0.3,
    holdout_time_fraction: float = 0.4,
    holdout_from: str = "",
    seed: int = 0,
    n_estimators: int = 200,
    max_depth: int = 4,
    learning_rate: float = 0.1,
    target_precision: float = 0.8,
    max_false_alarms_per_asset_month: float = 4.0,
    min_lead_hours: float = 0.0,
    dropout_share: float = 0.2,
    target_alarm_rate: float = 0.005,
    primary_metric: str = "pr_auc",
    max_regression: float = 0.02,
    min_roc_auc: float = 0.7,
    min_pr_auc: float = 0.2,
    min_event_recall: float = -1.0,
    dropout_max_ratio: float = 2.0,
    max_alarm_rate_ratio: float = 3.0,
    min_stability: float = 0.8,
    parity_tolerance: float = 1e-5,
    profiles_path: str = "",
    auto_promote: bool = True,
    code_revision: str = "unknown",
    trigger: str = "manual",
) -> dict:
    """Train an edge model and register it; returns the registered version.

    Args:
        data_uri: dataset directory (with schema.yaml) or readings file, as a
            path, file://, s3:// (endpoint from AWS_ENDPOINT_URL) or http(s):// URI.
        tracking_uri: MLflow tracking/registry URI.
        schema_path: dataset schema (path or URI); empty for schema.yaml beside the data.
        labels_uri: failure log (path or URI) instead of the schema's label.path.
        model_name: registered model name.
        windows: feature window lengths, in readings.
        aggregates: aggregates per window.
        holdout_entity_fraction: share of entities held out.
        holdout_time_fraction: latest share of the period held out.
        holdout_from: ISO time for retraining on fresh data: training pumps keep
            their rows after it, the holdout is the other pumps from it on.
        seed: seed for the split and the model.
        n_estimators: XGBoost trees.
        max_depth: XGBoost tree depth.
        learning_rate: XGBoost learning rate.
        target_precision: the alarm threshold keeps precision at least this.
        max_false_alarms_per_asset_month: and false-alarm episodes per asset per
            30 days at most this (negative: no budget); docs/pipeline.md.
        min_lead_hours: lead time a failure must be alarmed by to count in event_recall.
        dropout_share: extra training rows with one sensor dropped (share of rows).
        target_alarm_rate: unlabeled data (anomaly model): share of training rows
            that alarm.
        primary_metric: metric compared with the champion.
        max_regression: largest allowed drop vs the champion, overall and per slice.
        min_roc_auc: absolute ROC-AUC floor.
        min_pr_auc: absolute PR-AUC floor.
        min_event_recall: floor on the share of failures alarmed in time
            (negative: no such gate).
        dropout_max_ratio: with one sensor dead, healthy rows may alarm at most
            this many times as often as with every sensor.
        max_alarm_rate_ratio: anomaly model: holdout alarm rate at most this
            times target_alarm_rate.
        min_stability: anomaly model: Spearman of holdout scores against a
            forest with another seed.
        parity_tolerance: largest allowed |p_onnx - p_xgb|.
        profiles_path: device profiles YAML; empty for the defaults.
        auto_promote: move champion when every gate passes.
        code_revision: git revision of the training code.
        trigger: what started the run ("drift:<site>", "schedule", "manual: <reason>"),
            the training run's ``edgeloop.trigger`` tag in MLflow.
    """
    validated = validate_data(
        data_uri=data_uri, schema_path=schema_path, labels_uri=labels_uri
    )
    features = build_features(
        validated=validated.outputs["validated"], windows=windows, aggregates=aggregates
    )
    split = split_data(
        features=features.outputs["features"],
        holdout_entity_fraction=holdout_entity_fraction,
        holdout_time_fraction=holdout_time_fraction,
        seed=seed,
        holdout_from=holdout_from,
    )
    model = train_model(
        split=split.outputs["split"],
        params={
            "n_estimators": n_estimators,
            "max_depth": max_depth,
            "learning_rate": learning_rate,
            "seed": seed,
            "dropout_share": dropout_share,
        },
    )
    report = evaluate_model(
        split=split.outputs["split"],
        model=model.outputs["model"],
        threshold_policy={
            "target_precision": target_precision,
            "max_false_alarms_per_asset_month": max_false_alarms_per_asset_month,
            "min_lead_hours": min_lead_hours,
            "target_alarm_rate": target_alarm_rate,
        },
    )
    gate = gate_model(
        validated=validated.outputs["validated"],
        split=split.outputs["split"],
        report=report.outputs["Output"],
        tracking_uri=tracking_uri,
        model_name=model_name,
        policy={
            "primary_metric": primary_metric,
            "max_regression": max_regression,
            "min_roc_auc": min_roc_auc,
            "min_pr_auc": min_pr_auc,
            "min_event_recall": min_event_recall,
            "dropout_max_ratio": dropout_max_ratio,
            "max_alarm_rate_ratio": max_alarm_rate_ratio,
            "min_stability": min_stability,
        },
    )
    onnx = export_onnx(model=model.outputs["model"], split=split.outputs["split"])
    latency = profile_latency(
        onnx_model=onnx.outputs["onnx_model"],
        split=split.outputs["split"],
        profiles_path=profiles_path,
    )
    bundle = build_bundle(
        onnx_model=onnx.outputs["onnx_model"],
        split=split.outputs["split"],
        report=report.outputs["Output"],
        gate_result=gate.output,
        parity=onnx.outputs["Output"],
        parity_tolerance=parity_tolerance,
        latency=latency.output,
        ingest=validated.outputs["Output"],
        model_name=model_name,
        code_revision=code_revision,
        pipeline_run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
    )
    registered = register_model(
        bundle=bundle.outputs["bundle"],
        tracking_uri=tracking_uri,
        gates_passed=bundle.outputs["Output"],
        auto_promote=auto_promote,
        # Scalars only: kfp.local corrupts the executor input for lists nested in a
        # dict parameter. Windows/aggregates are in the bundle's feature spec.
        params={
            "n_estimators": n_estimators,
            "max_depth": max_depth,
            "learning_rate": learning_rate,
            "seed": seed,
            "primary_metric": primary_metric,
            "max_regression": max_regression,
            "data_uri": data_uri,
            "trigger": trigger,
        },
    )
    return registered.output
