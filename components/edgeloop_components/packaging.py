"""Assemble a model bundle directory: ``model.onnx`` + ``bundle.json``.

The bundle is the unit of delivery (ARCHITECTURE.md, "Model bundle"): what an
edge node needs to score, check its inputs, and measure drift, with the
lineage that makes it auditable. Writes files only; no registry access.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from edgeloop_agent.contracts import (
    MANIFEST_FILE,
    MODEL_FILE,
    BundleManifest,
    FeatureImportance,
    FeatureReference,
    FeatureSpec,
    GateResult,
    LatencyProfile,
    Lineage,
    OutputSemantics,
    ReferenceSample,
    ThresholdPolicyRecord,
    file_sha256,
)
from edgeloop_agent.features import bin_counts, reference_edges
from edgeloop_components.dataset import DatasetSchema


def reference_profile(x: np.ndarray, names: list[str]) -> list[FeatureReference]:
    """Per-input bin edges (training deciles), counts and summary statistics."""
    refs = []
    for i, name in enumerate(names):
        col = x[:, i].astype(np.float64)
        edges = reference_edges(col)
        counts, nan_count = bin_counts(col, edges)
        finite = col[np.isfinite(col)]
        stats = (
            {
                "mean": float(finite.mean()),
                "std": float(finite.std()),
                "min": float(finite.min()),
                "max": float(finite.max()),
            }
            if finite.size
            else {}
        )
        refs.append(
            FeatureReference(
                name=name,
                bin_edges=edges,
                counts=tuple(counts),
                nan_count=nan_count,
                **stats,
            )
        )
    return refs


def reference_sample(
    x: np.ndarray, scores: np.ndarray, size: int, seed: int
) -> ReferenceSample:
    """A seeded row sample with the scores the exported model gave it."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(x), size=min(size, len(x)), replace=False))
    inputs = tuple(tuple(None if np.isnan(v) else float(v) for v in x[r]) for r in rows)
    return ReferenceSample(inputs=inputs, scores=tuple(float(s) for s in scores[rows]))


def write_bundle(
    out_dir: Path,
    *,
    model_name: str,
    onnx_path: Path,
    spec: FeatureSpec,
    schema: DatasetSchema,
    threshold: float,
    horizon_hours: float | None,
    threshold_policy: ThresholdPolicyRecord | None = None,
    score: str | None = None,
    importance: FeatureImportance | None = None,
    train_x: np.ndarray,
    sample: ReferenceSample,
    metrics: dict[str, float | None],
    gates: list[GateResult],
    latency: list[LatencyProfile],
    lineage: Lineage,
) -> BundleManifest:
    """Copy the model in and write the manifest; returns the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / MODEL_FILE
    if Path(onnx_path).resolve() != target.resolve():
        shutil.copyfile(onnx_path, target)
    manifest = BundleManifest(
        model_name=model_name,
        model_sha256=file_sha256(target),
        model_bytes=target.stat().st_size,
        features=spec,
        sensors=tuple(col.sensor_spec() for col in schema.features),
        entity_column=schema.entity_column,
        time_column=schema.time_column,
        output=OutputSemantics(
            threshold=min(1.0, max(0.0, threshold)),
            horizon_hours=horizon_hours,
            threshold_policy=threshold_policy,
            **(
                {"score": score, "positive_label": "anomaly"}
                if score is not None
                else {}
            ),
        ),
        reference=tuple(reference_profile(train_x, spec.input_names())),
        reference_sample=sample,
        metrics=metrics,
        gates=tuple(gates),
        latency=tuple(latency),
        lineage=lineage,
        importance=importance,
    )
    write_manifest(out_dir, manifest)
    return manifest


def write_manifest(bundle_dir: Path, manifest: BundleManifest) -> None:
    """Write ``bundle.json`` deterministically (sorted keys, fixed indent)."""
    (Path(bundle_dir) / MANIFEST_FILE).write_text(
        manifest.model_dump_json(indent=1) + "\n", encoding="utf-8"
    )
