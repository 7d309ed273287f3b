"""Retraining on what the fleet collected: assemble the fresh data window, run, record.

The training set of a retraining run is what the intake collected since the
last training (Parquet partitions of raw readings, see
``edgeloop.monitor.intake.collect``) plus a configurable slice of the previous
training data, labelled with the ingested maintenance log. Pump types come
from the previous dataset's asset register (``fleet.json``): agents send
readings, not asset metadata. The dataset directory gets a
``partitions.json`` with every partition's hash, and the audit log a
``dataset`` record, so a model's lineage leads back to the reports.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from edgeloop.core.errors import EdgeloopError, UsageError
from edgeloop.core.settings import PlatformSettings
from edgeloop.monitor.assets import pump_types
from edgeloop.monitor.intake import collect
from edgeloop.monitor.labels import labels_path, read_work_orders
from edgeloop.provenance.audit import AuditLog
from edgeloop.train import pipeline_runs
from edgeloop_agent.contracts import RegisteredModel


def _files(base: Path) -> tuple[str, str, str, str]:
    """(readings file, label file, entity column, time column) from the base schema."""
    from edgeloop.core.yaml_files import read_yaml

    schema = read_yaml(base / "schema.yaml", "dataset schema") or {}
    label = schema.get("label") or {}
    readings, log = schema.get("readings", ""), label.get("path", "")
    if not readings or not log:
        raise UsageError(
            f"{base / 'schema.yaml'}: retraining needs 'readings' and a failure-log 'label.path'"
        )
    entity = str(schema.get("entity_column", "pump_id"))
    when = str(schema.get("time_column", "timestamp"))
    return str(readings), str(log), entity, when


def assemble(
    settings: PlatformSettings,
    base: Path | str,
    out: Path,
    *,
    since_day: str = "",
    older_days: float = 30.0,
) -> dict[str, Any]:
    """Write a training dataset: collected readings (from ``since_day``) + recent base data.

    ``base`` may be a directory or a URI (``s3://BUCKET/datasets/base/``): a
    remote base is staged into a scratch directory first and recorded by URI.
    """
    import tempfile

    from edgeloop_components import uris

    if not uris.is_remote(str(base)):
        return _assemble(
            settings, Path(base), out, since_day, older_days, str(Path(base).resolve())
        )
    with tempfile.TemporaryDirectory(prefix="edgeloop-base-") as scratch:
        try:
            staged = uris.stage(str(base), Path(scratch))
        except EdgeloopError as exc:
            raise UsageError(str(exc)) from exc
        return _assemble(settings, staged, out, since_day, older_days, str(base))


def _assemble(
    settings: PlatformSettings,
    base: Path,
    out: Path,
    since_day: str,
    older_days: float,
    base_label: str,
) -> dict[str, Any]:
    """:func:`assemble` on a local base directory.

    Args:
        settings: platform settings (model name, collection root, audit log).
        base: the previous training dataset (``schema.yaml``, readings, log).
        out: new dataset directory (replaced).
        since_day: first collected day to use (``YYYY-MM-DD``); empty: all.
        older_days: days of the base readings before the collected ones to keep.
        base_label: how the base is recorded (its path, or the URI it came from).

    Raises:
        UsageError: no base schema, or nothing collected.

    Long: read base, read collected partitions, label, merge, write and record are one transaction over the dataset directory; each step feeds the next.
    """
    model = settings.registry.model_name
    if since_day and not _is_day(since_day):
        raise UsageError(f"--since {since_day!r}: expected a day as YYYY-MM-DD")
    if not (base / "schema.yaml").exists():
        raise UsageError(f"{base}: not a dataset (no schema.yaml)")
    parts = collect.partitions(
        settings.collect_root(), "readings", model, since_day=since_day
    )
    fresh = collect.load(parts)
    if fresh.empty:
        raise UsageError(
            f"no collected readings for {model} under {settings.collect_root()}"
            + (f" since {since_day}" if since_day else "")
            + " (agents need outbox.upload_readings)"
        )
    fresh["timestamp"] = pd.to_datetime(fresh["timestamp"], utc=True).dt.tz_convert(
        None
    )
    fresh = fresh.drop_duplicates(subset=["pump_id", "timestamp"])
    readings_file, log_file, entity, when = _files(base)
    register = _asset_register(base)
    if "pump_type" not in fresh.columns:
        fresh["pump_type"] = fresh["pump_id"].map(register).fillna("unknown")
    # collected partitions name the entity pump_id and the time timestamp
    fresh = fresh.rename(columns={"pump_id": entity, "timestamp": when})
    old = pd.read_parquet(base / readings_file)
    cutoff = fresh[when].min()
    old = old[
        (old[when] < cutoff) & (old[when] >= cutoff - pd.Timedelta(days=older_days))
    ]
    columns = [c for c in old.columns if c in fresh.columns]
    combined = (
        pd.concat([old[columns], fresh[columns]], ignore_index=True)
        .sort_values([entity, when], kind="stable")
        .reset_index(drop=True)
    )
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    combined.to_parquet(out / readings_file, index=False)
    _write_labels(settings, base / log_file, out / log_file)
    for name in ("schema.yaml", "fleet.json"):
        if (base / name).exists():
            shutil.copyfile(base / name, out / name)
    manifest = {
        "base": base_label,
        "older_days": older_days,
        "rows": {"collected": len(fresh), "base": len(old), "total": len(combined)},
        "partitions": [
            {
                "site": p.site,
                "day": p.day,
                "files": len(p.files),
                "sha256": p.sha256,
            }
            for p in parts
        ],
    }
    (out / "partitions.json").write_text(
        json.dumps(manifest, indent=1) + "\n", encoding="utf-8"
    )
    AuditLog(settings.audit_path()).append("dataset", str(out.resolve()), **manifest)
    return manifest


def _is_day(text: str) -> bool:
    try:
        return pd.Timestamp(text).strftime("%Y-%m-%d") == text
    except ValueError:
        return False


def _asset_register(base: Path) -> dict[str, str]:
    path = base / "fleet.json"
    return pump_types(path) if path.exists() else {}


def _write_labels(settings: PlatformSettings, base_log: Path, out_log: Path) -> None:
    """The ingested work orders when there are any, else the base dataset's log."""
    ingested = labels_path(settings.collect_root())
    if not collect.exists(ingested):
        shutil.copyfile(base_log, out_log)
        return
    log = read_work_orders(ingested)
    for column in log.columns:
        if isinstance(log[column].dtype, pd.DatetimeTZDtype):
            log[column] = (
                log[column].dt.tz_convert(None).dt.strftime("%Y-%m-%dT%H:%M:%S")
            )
    log.to_csv(out_log, index=False)


def retrain(
    settings: PlatformSettings,
    data: Path,
    reason: str,
    progress: pipeline_runs.Progress | None = None,
    trigger: dict[str, Any] | None = None,
    **params: Any,
) -> RegisteredModel:
    """Run the training pipeline on ``data`` for ``reason``; the gates decide promotion.

    ``trigger`` (the fired decision, as JSON) is kept in the audit log's
    ``training`` record: the link from drift reports to the next version.
    """
    args = pipeline_runs.pipeline_arguments(settings, data, **params)
    return pipeline_runs.run_local(
        settings, args, progress, reason=reason, trigger=trigger
    ).registered
