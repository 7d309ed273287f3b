"""Monitor-only bundles: a reference profile of history, served with no model.

Most plants start with sensor history and no failure labels. Before any model
exists, the agent can already watch the data: the same validation and the same
window features as training (``tasks.ingest_validate``, ``tasks.build_features``),
then the per-input reference bins and a row sample, written as a ``bundle.json``
of kind ``monitor-only`` (no ``model.onnx``, no score, no threshold). An agent
serving it keeps drift and data-quality windows and reports them like any
other version; when labels arrive, the pipeline trains the classifier (or the
anomaly model, without labels) on the same schema.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from edgeloop_agent.contracts import (
    MANIFEST_FILE,
    BundleManifest,
    FeatureSpec,
    Lineage,
    ReferenceSample,
)
from edgeloop_components import packaging, tasks
from edgeloop_components.dataset import SCHEMA_FILE, load_schema
from edgeloop_components.errors import SchemaError

SAMPLE_ROWS = 200
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._:@+\-]{0,252}$")
"""What the agent's reports accept as a model name (``contracts.reports.Name``)."""


def _check_name(name: str) -> None:
    """Refuse a name the agent's reports could not carry, before any window is sent."""
    if not _NAME.match(name):
        raise SchemaError(
            f"model name {name!r}: use letters, digits and . _ : @ + - "
            "(starting with a letter, digit or _), at most 253 characters"
        )


def build_monitor_bundle(
    data_uri: str,
    out_dir: Path,
    *,
    model_name: str,
    schema_uri: str = "",
    windows: tuple[int, ...] = (12,),
    aggregates: tuple[str, ...] = ("last", "mean", "std", "slope"),
    code_revision: str = "unknown",
    seed: int = 0,
) -> BundleManifest:
    """Validate the data, compute its window features and write a monitor-only bundle.

    Labels are not needed and, when the schema has them, not used. An empty
    ``model_name`` takes the schema's ``name``.

    Raises:
        DataValidationError: the data breaks its schema (every broken rule named).
        ComponentError: unreadable data or schema.
    """
    if model_name:
        _check_name(model_name)
    with tempfile.TemporaryDirectory(prefix="edgeloop-profile-") as tmp:
        work = Path(tmp)
        ingest = tasks.ingest_validate(data_uri, schema_uri, work / "validated")
        tasks.build_features(
            work / "validated", list(windows), list(aggregates), work / "features"
        )
        spec = FeatureSpec.model_validate_json(
            (work / "features" / tasks.SPEC).read_text(encoding="utf-8")
        )
        schema = load_schema(work / "features" / SCHEMA_FILE)
        frame = pd.read_parquet(work / "features" / tasks.FEATURES)
    _check_name(model_name or schema.name)
    names = spec.input_names()
    x = frame[names].to_numpy(dtype=np.float32)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(x), size=min(SAMPLE_ROWS, len(x)), replace=False))
    sample = ReferenceSample(
        inputs=tuple(
            tuple(None if np.isnan(v) else float(v) for v in x[r]) for r in rows
        ),
        scores=(),
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    manifest = BundleManifest(
        kind="monitor-only",
        model_name=model_name or schema.name,
        features=spec,
        sensors=tuple(col.sensor_spec() for col in schema.features),
        entity_column=schema.entity_column,
        time_column=schema.time_column,
        reference=tuple(packaging.reference_profile(x, names)),
        reference_sample=sample,
        metrics={"rows": float(ingest["rows"]), "entities": float(ingest["entities"])},
        lineage=Lineage(
            data_hash=ingest["data_hash"],
            code_revision=code_revision,
            pipeline_run_id=f"profile-{stamp}",
            dataset_uri=ingest["dataset_uri"],
            trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        ),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    packaging.write_manifest(out_dir, manifest)
    return manifest


def bundle_version(out_dir: Path) -> str:
    """A monitor-only bundle's version: ``profile-`` and its digest's first 12 hex digits."""
    digest = hashlib.sha256((out_dir / MANIFEST_FILE).read_bytes()).hexdigest()
    return f"profile-{digest[:12]}"
