"""Path-level entry points of the training steps, one function per step.

Each function reads its inputs from directories/files, calls the pure logic
modules and writes its outputs; the KFP wrappers in ``steps/`` only map
``Input``/``Output`` artifacts to these paths. No ``kfp`` import here, so every
step can be unit-tested and run by hand.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from edgeloop_agent.contracts import (
    FeatureImportance,
    FeatureSpec,
    GateResult,
    LatencyProfile,
    Lineage,
    ThresholdPolicyRecord,
)
from edgeloop_components import (
    anomaly,
    dropout,
    evaluation,
    export,
    featurize,
    gating,
    importance,
    packaging,
    profiling,
    registration,
    split,
    thresholds,
    training,
    uris,
    validation,
)
from edgeloop_components.dataset import (
    SCHEMA_FILE,
    DatasetSchema,
    FailureLogLabel,
    dump_schema,
    load_schema,
)

log = logging.getLogger(__name__)

READINGS = "readings.parquet"
FEATURES = "features.parquet"
SPEC = "feature_spec.json"
TRAIN = "train.parquet"
HOLDOUT = "holdout.parquet"
REFERENCE_SAMPLE_ROWS = 200
ANOMALY_METRICS = ("alarm_rate", "target_alarm_rate", "stability")
ANOMALY_SCORE = (
    "anomaly score: how unusual the readings are against the unlabeled history "
    "(0.5 at the forest's boundary), not a failure probability"
)


def _spec(directory: Path) -> FeatureSpec:
    return FeatureSpec.model_validate_json(
        (directory / SPEC).read_text(encoding="utf-8")
    )


def _xy(frame: pd.DataFrame, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and labels (all 0 for unlabeled data, which only an anomaly model uses)."""
    x = frame[spec.input_names()].to_numpy(dtype=np.float32)
    if validation.LABEL_COLUMN not in frame:
        return x, np.zeros(len(frame), dtype=np.int8)
    return x, frame[validation.LABEL_COLUMN].to_numpy(dtype=np.int8)


def is_anomaly_run(directory: Path) -> bool:
    """No label in the schema: the run trains an anomaly model."""
    return load_schema(directory / SCHEMA_FILE).label is None


def ingest_validate(
    data_uri: str, schema_uri: str, out_dir: Path, labels_uri: str = ""
) -> dict[str, Any]:
    """Step 1: validate the user's data (any URI: path, s3://, http(s)://) and keep a labelled copy.

    A remote dataset is staged into a scratch directory beside the output and
    removed after validation; only the labelled copy stays.
    """
    scratch = out_dir.parent / (out_dir.name + ".staged")
    try:
        data, schema_file, labels = uris.stage_dataset(
            data_uri, schema_uri, labels_uri, scratch
        )
        report, schema = validation.check(data, schema_file, labels)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    assert report.frame is not None
    report.frame.to_parquet(out_dir / READINGS, index=False)
    dump_schema(schema, out_dir / SCHEMA_FILE)
    for warning in report.warnings:
        log.warning("%s", warning)
    return {
        "rows": report.rows,
        "entities": report.entities,
        "positive_share": report.positive_share,
        "data_hash": report.data_hash,
        "dataset_uri": uris.describe(data_uri),
        **({"labels_uri": uris.describe(labels_uri)} if labels_uri else {}),
    }


def build_features(
    validated_dir: Path, windows: list[int], aggregates: list[str], out_dir: Path
) -> int:
    """Step 2: windowed aggregates per entity (the edge agent's own code)."""
    schema = load_schema(validated_dir / SCHEMA_FILE)
    spec = featurize.feature_spec(schema, windows, aggregates)
    table = featurize.build_features(
        pd.read_parquet(validated_dir / READINGS), schema, spec
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out_dir / FEATURES, index=False)
    (out_dir / SPEC).write_text(spec.model_dump_json(), encoding="utf-8")
    dump_schema(schema, out_dir / SCHEMA_FILE)
    return len(spec.input_names())


def split_data(
    features_dir: Path,
    entity_fraction: float,
    time_fraction: float,
    seed: int,
    out_dir: Path,
    holdout_from: str = "",
) -> dict[str, int]:
    """Step 3: train/holdout split by entity and time."""
    schema = load_schema(features_dir / SCHEMA_FILE)
    horizon = (
        pd.Timedelta(hours=schema.label.horizon_hours)
        if isinstance(schema.label, FailureLogLabel)
        else None
    )
    table = split.split(
        pd.read_parquet(features_dir / FEATURES),
        schema.entity_column,
        schema.time_column,
        entity_fraction,
        time_fraction,
        seed,
        holdout_from,
        purge=horizon,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    for side, name in (("train", TRAIN), ("holdout", HOLDOUT)):
        table[table[split.SPLIT_COLUMN] == side].drop(
            columns=[split.SPLIT_COLUMN]
        ).to_parquet(out_dir / name, index=False)
    for extra in (SPEC, SCHEMA_FILE):
        shutil.copyfile(features_dir / extra, out_dir / extra)
    counts = table[split.SPLIT_COLUMN].value_counts()
    out = {side: int(counts.get(side, 0)) for side in ("train", "holdout", "unused")}
    if out["unused"]:
        log.warning(
            "split: %d of %d rows (%.0f%%) are in neither side (training entities "
            "after the cut-off, holdout entities before it): the price of a holdout "
            "no entity or period leaks into",
            out["unused"],
            len(table),
            100 * out["unused"] / len(table),
        )
    return out


def train_model(split_dir: Path, params: dict[str, Any], out_path: Path) -> None:
    """Step 4: fit XGBoost on the training split, with sensor-dropout copies added."""
    spec = _spec(split_dir)
    x, y = _xy(pd.read_parquet(split_dir / TRAIN), spec)
    train_params = training.TrainParams.model_validate(params)
    if is_anomaly_run(split_dir):
        anomaly.save(
            anomaly.train(x, train_params.n_estimators, train_params.seed), out_path
        )
        return
    x, y = dropout.augment(x, y, spec, train_params.dropout_share, train_params.seed)
    model = training.train(x, y, train_params)
    training.save(model, out_path)


def evaluate_model(
    split_dir: Path, model_path: Path, policy: dict[str, Any] | float
) -> dict[str, Any]:
    """Step 5: holdout metrics, the threshold by the policy, dropout false alarms.

    Overall and per slice; the false-alarm rates with each sensor dead feed the
    dropout gate.

    ``policy``: a :class:`thresholds.ThresholdPolicy` as a dict, or only the
    target precision.
    """
    threshold_policy = _threshold_policy(policy)
    if is_anomaly_run(split_dir):
        return _evaluate_anomaly(split_dir, model_path, threshold_policy)
    schema = load_schema(split_dir / SCHEMA_FILE)
    spec = _spec(split_dir)
    holdout = pd.read_parquet(split_dir / HOLDOUT)
    x, y = _xy(holdout, spec)
    model = training.load(model_path)
    scores = training.predict(model, x)
    report = evaluation.evaluate(
        y,
        scores,
        holdout[schema.slices],
        threshold_policy,
        holdout[schema.entity_column].to_numpy(),
        holdout[schema.time_column].to_numpy(),
    )
    report["importance"] = importance.global_importance(model, x, spec)
    threshold = report["overall"].get("threshold")
    if threshold is not None:
        report["dropout"] = dropout.false_alarm_rates(
            lambda rows: training.predict(model, rows), x, y, threshold, spec
        )
    return report


def _evaluate_anomaly(
    split_dir: Path, model_path: Path, policy: thresholds.ThresholdPolicy
) -> dict[str, Any]:
    """No labels: the threshold from the target alarm rate, the holdout's alarm rate, stability."""
    schema = load_schema(split_dir / SCHEMA_FILE)
    spec = _spec(split_dir)
    model = anomaly.load(model_path)
    train_x, _ = _xy(pd.read_parquet(split_dir / TRAIN), spec)
    holdout = pd.read_parquet(split_dir / HOLDOUT)
    x, _ = _xy(holdout, spec)
    threshold = anomaly.threshold_for(model.scores(train_x), policy.target_alarm_rate)
    alarms = model.scores(x) >= threshold
    slices: dict[str, Any] = {}
    for column in schema.slices:
        values = holdout[column].astype(str).to_numpy()
        slices[column] = {
            value: {
                "rows": int((values == value).sum()),
                "alarm_rate": float(alarms[values == value].mean()),
            }
            for value in sorted(set(values))
        }
    return {
        "kind": "anomaly",
        "target_precision": policy.target_precision,
        "threshold_policy": policy.model_dump(),
        "overall": {
            "rows": len(x),
            "threshold": threshold,
            "target_alarm_rate": policy.target_alarm_rate,
            "alarm_rate": float(alarms.mean()) if len(x) else 0.0,
            "stability": anomaly.stability(model, train_x, x, seed=0),
        },
        "slices": slices,
    }


def _threshold_policy(policy: dict[str, Any] | float) -> thresholds.ThresholdPolicy:
    if isinstance(policy, dict):
        return thresholds.ThresholdPolicy.model_validate(policy)
    return thresholds.ThresholdPolicy(target_precision=policy)


def gate_vs_champion(
    validated_dir: Path,
    split_dir: Path,
    report: dict[str, Any],
    tracking_uri: str,
    model_name: str,
    policy: dict[str, Any],
) -> dict[str, Any]:
    """Step 6: absolute floors, then the champion on the very same holdout rows."""
    gate_policy = gating.GatePolicy.model_validate(policy)
    if report.get("kind") == "anomaly":  # no labels: nothing to score a champion on
        gates = gating.anomaly_gates(report, gate_policy)
        return {
            "parent_champion": "",
            "champion_report": None,
            "gates": [g.model_dump() for g in gates],
            "passed": gating.all_passed(gates),
        }
    gates = gating.absolute_gates(report, gate_policy)
    champion_report, ref = None, ""
    with registration.champion_bundle(tracking_uri, model_name) as found:
        if found is not None:
            version, bundle_dir = found
            ref = f"{model_name}:{version}"
            champion_report = _score_champion(
                validated_dir,
                split_dir,
                bundle_dir,
                report.get("threshold_policy") or report["target_precision"],
            )
    gates += gating.champion_gates(report, champion_report, gate_policy, ref)
    return {
        "parent_champion": ref,
        "champion_report": champion_report,
        "gates": [g.model_dump() for g in gates],
        "passed": gating.all_passed(gates),
    }


def _score_champion(
    validated_dir: Path,
    split_dir: Path,
    bundle_dir: Path,
    policy: dict[str, Any] | float,
) -> dict[str, Any]:
    """Recompute the champion's own features on the holdout rows and score them."""
    from edgeloop_agent.contracts import verify_bundle

    manifest = verify_bundle(bundle_dir)
    schema = load_schema(validated_dir / SCHEMA_FILE)
    readings = pd.read_parquet(validated_dir / READINGS)
    theirs = featurize.build_features(readings, schema, manifest.features)
    keys = [schema.entity_column, schema.time_column]
    holdout = pd.read_parquet(split_dir / HOLDOUT)[
        [*keys, *schema.slices, validation.LABEL_COLUMN]
    ]
    rows = holdout.merge(
        theirs[[*keys, *manifest.features.input_names()]], on=keys, how="left"
    )
    x = rows[manifest.features.input_names()].to_numpy(dtype=np.float32)
    scores = export.onnx_scores(export.session(bundle_dir / "model.onnx"), x)
    y = rows[validation.LABEL_COLUMN].to_numpy()
    return evaluation.evaluate(
        y,
        scores,
        rows[schema.slices],
        _threshold_policy(policy),
        rows[schema.entity_column].to_numpy(),
        rows[schema.time_column].to_numpy(),
    )


def export_onnx(model_path: Path, split_dir: Path, out_path: Path) -> float:
    """Step 7: ONNX export; returns max |p_onnx - p_xgb| on the holdout."""
    spec = _spec(split_dir)
    x, _ = _xy(pd.read_parquet(split_dir / HOLDOUT), spec)
    if is_anomaly_run(split_dir):
        forest = anomaly.load(model_path)
        anomaly.to_onnx(forest, len(spec.input_names()), out_path)
        expected = forest.scores(x)
        actual = export.onnx_scores(export.session(out_path), x)
        return float(np.max(np.abs(actual - expected))) if len(x) else 0.0
    model = training.load(model_path)
    export.to_onnx(model, len(spec.input_names()), out_path)
    return export.parity(training.load(model_path), out_path, x)


def profile_latency(
    onnx_path: Path, split_dir: Path, profiles_path: str
) -> list[dict[str, Any]]:
    """Step 8: latency/memory per device profile."""
    x, _ = _xy(pd.read_parquet(split_dir / HOLDOUT), _spec(split_dir))
    profiles = profiling.load_profiles(Path(profiles_path) if profiles_path else None)
    return [p.model_dump() for p in profiling.profile(onnx_path, x[:2000], profiles)]


def assemble_bundle(
    *,
    model_name: str,
    onnx_path: Path,
    split_dir: Path,
    report: dict[str, Any],
    gate_result: dict[str, Any],
    parity: float,
    parity_tolerance: float,
    latency: list[dict[str, Any]],
    ingest: dict[str, Any],
    code_revision: str,
    pipeline_run_id: str,
    out_dir: Path,
) -> dict[str, Any]:
    """Step 9: the bundle directory, with every gate recorded in it."""
    spec = _spec(split_dir)
    schema: DatasetSchema = load_schema(split_dir / SCHEMA_FILE)
    train_x, _ = _xy(pd.read_parquet(split_dir / TRAIN), spec)
    sess = export.session(onnx_path)
    # The sample comes from the training rows, like the reference bins: both
    # describe the distribution the model learned, which drift is measured against.
    sample = packaging.reference_sample(
        train_x, export.onnx_scores(sess, train_x), REFERENCE_SAMPLE_ROWS, 0
    )
    gates = [GateResult.model_validate(g) for g in gate_result["gates"]]
    gates.append(
        gating.parity_gate(parity, gating.GatePolicy(parity_tolerance=parity_tolerance))
    )
    overall = report["overall"]
    label = schema.label
    is_anomaly = report.get("kind") == "anomaly"
    manifest = packaging.write_bundle(
        out_dir,
        model_name=model_name,
        onnx_path=onnx_path,
        spec=spec,
        schema=schema,
        threshold=overall.get("threshold") or 0.5,
        threshold_policy=_policy_record(report),
        horizon_hours=label.horizon_hours
        if isinstance(label, FailureLogLabel)
        else None,
        train_x=train_x,
        sample=sample,
        metrics={
            m: overall.get(m)
            for m in (ANOMALY_METRICS if is_anomaly else evaluation.METRICS)
        },
        score=ANOMALY_SCORE if is_anomaly else None,
        importance=FeatureImportance.model_validate(report["importance"])
        if report.get("importance")
        else None,
        gates=gates,
        latency=[LatencyProfile.model_validate(p) for p in latency],
        lineage=Lineage(
            data_hash=ingest["data_hash"],
            code_revision=code_revision,
            pipeline_run_id=pipeline_run_id,
            parent_champion=gate_result.get("parent_champion", ""),
            dataset_uri=ingest.get("dataset_uri", ""),
            trained_at=pd.Timestamp.now(tz="UTC").isoformat(),
        ),
    )
    return {
        "gates_passed": gating.all_passed(gates),
        "model_sha256": manifest.model_sha256,
    }


def _policy_record(report: dict[str, Any]) -> ThresholdPolicyRecord | None:
    """What the bundle records about how its threshold was chosen."""
    policy = report.get("threshold_policy")
    overall = report["overall"]
    if not policy or overall.get("threshold") is None:
        return None
    interval = overall.get("safe_interval")
    if report.get("kind") == "anomaly":
        return ThresholdPolicyRecord(
            target_precision=policy["target_precision"],
            max_false_alarms_per_asset_month=None,
            target_alarm_rate=policy["target_alarm_rate"],
            policy_met=True,
        )
    return ThresholdPolicyRecord(
        target_precision=policy["target_precision"],
        max_false_alarms_per_asset_month=policy.get("max_false_alarms_per_asset_month"),
        min_lead_hours=policy.get("min_lead_hours", 0.0),
        policy_met=bool(overall.get("threshold_policy_met")),
        safe_interval=tuple(interval) if interval else None,
    )


def register_bundle(
    bundle_dir: Path,
    tracking_uri: str,
    gates_passed: bool,
    auto_promote: bool,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Step 10: register in MLflow; move ``champion`` only if every gate passed."""
    result = registration.register(
        bundle_dir,
        tracking_uri=tracking_uri,
        gates_passed=gates_passed,
        auto_promote=auto_promote,
        params=params,
    )
    return {
        "name": result.name,
        "version": result.version,
        "run_id": result.run_id,
        "bundle_uri": result.bundle_uri,
        "bundle_sha256": result.bundle_sha256,
        "promoted": result.promoted,
        "previous_champion": result.previous_champion,
    }


def dumps(value: Any) -> str:
    """JSON for artifact metadata and the reports steps pass as strings (numpy-safe).

    Reports (evaluation, gates, latency, ingest) hold lists nested in dicts,
    which kfp.local corrupts in a ``dict`` parameter (see the pipeline's
    ``params``), so they travel as JSON strings; the registration result is
    flat scalars and travels as a ``dict`` output (see ``register_model``).
    """
    return json.dumps(value, default=float, sort_keys=True)
