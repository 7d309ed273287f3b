"""Delayed labels: maintenance work orders joined with what the fleet predicted.

Failures are known days after the readings that foretold them. ``ingest``
adds work orders (the simulator's maintenance log, or any CSV with an entity
and a failure time, named by the dataset schema's label section) to the
collected label store, deduplicated by (entity, failure time). ``alarm_quality``
joins them with the collected readings (each carries its model version, score
and alarm, see ``edgeloop.monitor.intake.collect``) and scores every version's alarms
per day: a reading is a true positive when its pump failed within the horizon
after it. Only readings whose horizon has passed by the newest label are
judged (the rest cannot be known yet).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from edgeloop.core.errors import UsageError
from edgeloop.monitor.intake import collect
from edgeloop_components.labelling import failure_within_horizon

LABELS_FILE = "maintenance.csv"


def labels_path(collect_root: collect.Root) -> collect.Root:
    """Where ingested work orders are kept, beside the collected partitions."""
    return collect.join(collect_root, "labels", LABELS_FILE)


def read_work_orders(
    path: collect.Root, entity_column: str = "pump_id", time_column: str = "failed_at"
) -> pd.DataFrame:
    """Read and check a work-order CSV; every problem named with file, row and column.

    Raises:
        UsageError: unreadable file, missing column, or unparseable time.
    """
    try:
        with collect.open_file(path) as handle:
            frame = pd.read_csv(handle, dtype={entity_column: "string"})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise UsageError(f"{path}: cannot read work orders ({exc})") from exc
    missing = [c for c in (entity_column, time_column) if c not in frame.columns]
    if missing:
        raise UsageError(
            f"{path}: missing column(s) {', '.join(missing)} (have: {', '.join(map(str, frame.columns))})"
        )
    times = pd.to_datetime(frame[time_column], errors="coerce", utc=True)
    bad = times.isna() | frame[entity_column].isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 2  # header is line 1
        column = time_column if times.isna().iloc[row - 2] else entity_column
        raise UsageError(
            f"{path}:{row}: {column}: empty or not a time ({int(bad.sum())} bad row(s))"
        )
    frame[time_column] = times
    return frame.rename(columns={entity_column: "pump_id", time_column: "failed_at"})


def ingest(
    path: Path,
    collect_root: collect.Root,
    entity_column: str = "pump_id",
    time_column: str = "failed_at",
) -> dict[str, Any]:
    """Add work orders to the label store; returns counts (new, duplicates, total)."""
    incoming = read_work_orders(path, entity_column, time_column)
    store = labels_path(collect_root)
    existing = (
        read_work_orders(store) if collect.exists(store) else incoming.iloc[0:0].copy()
    )
    merged = pd.concat([existing, incoming], ignore_index=True)
    merged = merged.drop_duplicates(subset=["pump_id", "failed_at"], keep="first")
    new = len(merged) - len(existing)
    merged = merged.sort_values(["failed_at", "pump_id"]).reset_index(drop=True)
    out = merged.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.strftime("%Y-%m-%dT%H:%M:%S")
    if collect.is_remote(store):
        with collect.open_file(store, "wb") as handle:  # one PUT: atomic
            handle.write(out.to_csv(index=False).encode())
    else:
        local = Path(store)
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.tmp")
        out.to_csv(tmp, index=False)
        os.replace(tmp, local)
    return {
        "file": str(path),
        "new": new,
        "duplicates": len(incoming) - new,
        "total": len(merged),
        "store": str(store),
    }


def label_readings(
    readings: pd.DataFrame, failures: pd.DataFrame, horizon_hours: float
) -> pd.Series:
    """1 where the reading's pump failed within ``horizon_hours`` after it, else 0.

    The same rule training uses (:func:`edgeloop_components.labelling.failure_within_horizon`).
    """
    stamps = pd.to_datetime(readings["timestamp"], utc=True).dt.tz_convert(None)
    failed = pd.to_datetime(failures["failed_at"], utc=True).dt.tz_convert(None)
    label = failure_within_horizon(
        readings["pump_id"].astype(str).to_numpy(),
        stamps.to_numpy(dtype="datetime64[ns]"),
        failures["pump_id"].astype(str).to_numpy(),
        failed.to_numpy(dtype="datetime64[ns]"),
        np.timedelta64(int(horizon_hours * 3600), "s"),
    )
    return pd.Series(label, index=readings.index)


def average_precision(label: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve (sklearn's); NaN with no positives."""
    from sklearn.metrics import average_precision_score

    if int(label.sum()) == 0:
        return float("nan")
    return float(average_precision_score(label, score))


def alarm_quality(
    collect_root: collect.Root, model: str, horizon_hours: float
) -> list[dict[str, Any]]:
    """Per model version and day: alarms, precision, recall, PR-AUC, judged readings."""
    store = labels_path(collect_root)
    readings = collect.load(collect.partitions(collect_root, "readings", model))
    if readings.empty or not collect.exists(store):
        return []
    failures = read_work_orders(store)
    known_until = failures["failed_at"].max()
    stamps = pd.to_datetime(readings["timestamp"], utc=True)
    judged = readings[stamps + pd.Timedelta(hours=horizon_hours) <= known_until].copy()
    if judged.empty:
        return []
    judged["label"] = label_readings(judged, failures, horizon_hours)
    judged["day"] = pd.to_datetime(judged["timestamp"], utc=True).dt.strftime(
        "%Y-%m-%d"
    )
    out = []
    for (version, day), part in judged.groupby(["model_version", "day"], sort=True):
        out.append(_quality_row(str(version), str(day), part))
    for version, part in judged.groupby("model_version", sort=True):
        out.append(_quality_row(str(version), "all", part))
    return out


def _quality_row(version: str, day: str, part: pd.DataFrame) -> dict[str, Any]:
    label = part["label"].to_numpy()
    alarm = part["alarm"].to_numpy(dtype=bool)
    tp = int((alarm & (label == 1)).sum())
    fp = int((alarm & (label == 0)).sum())
    fn = int((~alarm & (label == 1)).sum())
    ap = average_precision(label, part["score"].to_numpy(dtype=float))
    return {
        "model_version": version,
        "day": day,
        "readings": len(part),
        "failing": int(label.sum()),
        "alarms": int(alarm.sum()),
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / (tp + fn), 4) if tp + fn else None,
        "pr_auc": None if np.isnan(ap) else round(ap, 4),
    }
