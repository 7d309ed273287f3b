"""Load a readings table and check it against its :class:`DatasetSchema`.

The first step of the training pipeline and ``edgeloop data validate`` both call
:func:`validate_dataset`. It collects *every* broken rule (missing/extra columns,
dtypes, out-of-range share, NaN share, duplicate (entity, time) rows, empty data,
single-class label) before failing, so a user fixes their data in one pass.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from edgeloop_components.dataset import (
    IMPLICIT_ENTITY,
    IMPLICIT_TIME,
    ONE_ENTITY,
    SCHEMA_FILE,
    ColumnLabel,
    DatasetSchema,
    FailureLogLabel,
    FeatureColumn,
    Thresholds,
    load_schema,
)
from edgeloop_components.errors import DataValidationError, SchemaError
from edgeloop_components.labelling import failure_within_horizon

LABEL_COLUMN = "__label__"


@dataclass
class ValidationReport:
    """What validation found; ``frame`` holds the readings plus ``__label__``."""

    path: Path
    rows: int
    entities: int
    positive_share: float | None
    """``None`` for unlabeled data."""
    data_hash: str
    warnings: list[str] = field(default_factory=list)
    frame: pd.DataFrame | None = None


def resolve_inputs(path: Path, schema_path: Path | None) -> tuple[Path, DatasetSchema]:
    """Find the readings file and schema for a user-given PATH.

    PATH may be a dataset directory (holding ``schema.yaml``) or the readings
    file itself, in which case ``--schema`` is required unless a ``schema.yaml``
    sits beside it.
    """
    path = Path(path)
    if not path.exists():
        raise SchemaError(f"{path}: no such file or directory")
    if schema_path is None:
        base = path if path.is_dir() else path.parent
        schema_path = base / SCHEMA_FILE
        if not schema_path.exists():
            raise SchemaError(f"{schema_path}: no schema found; pass --schema FILE")
    schema = load_schema(schema_path)
    readings = path if path.is_file() else Path(schema_path).parent / schema.readings
    if path.is_dir() and not readings.exists():
        readings = path / schema.readings
    return readings, schema


CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".txt")
SEPARATORS = ",;\t|"


def _kind(path: Path) -> str:
    """'parquet', 'csv' or '' from the file name (``.csv.gz`` is CSV, gzipped)."""
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    return ""


def sniff_separator(path: Path) -> str:
    """The CSV field separator, guessed from the first lines (``,`` when unsure).

    Plants export with ``;`` (decimal commas) or tabs as often as with commas.
    """
    import csv
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        head = handle.read(64 * 1024)
    lines = head.splitlines()[:20]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=SEPARATORS).delimiter
    except csv.Error:
        return ","


def read_table(path: Path) -> pd.DataFrame:
    """Read Parquet or CSV (``.csv``, ``.csv.gz``, any of ``, ; tab |``) by file name."""
    kind = _kind(path)
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        if kind == "csv":
            return pd.read_csv(path, sep=sniff_separator(path))
    except FileNotFoundError as exc:
        raise DataValidationError([f"{path}: file not found"]) from exc
    except (ValueError, OSError, EOFError, pd.errors.ParserError) as exc:
        raise DataValidationError(
            [f"{path}: cannot be read as {kind} ({str(exc).splitlines()[0]})"]
        ) from exc
    raise DataValidationError(
        [
            f"{path}: unsupported file type {''.join(path.suffixes)!r} "
            "(use .parquet, .csv or .csv.gz)"
        ]
    )


def data_hash(paths: list[Path]) -> str:
    """sha256 over the bytes of the data files, in the given order (for lineage)."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            # file_digest streams into the digest its factory returns: the
            # shared one, so the hash covers every file's bytes in order.
            hashlib.file_digest(handle, lambda: digest)
    return digest.hexdigest()


def validate_dataset(
    readings_path: Path,
    schema: DatasetSchema,
    schema_dir: Path,
    labels_path: Path | None = None,
) -> ValidationReport:
    """Load, check, clean and label a readings table.

    Checking and cleaning are separate steps: the checks only read the frame
    and list every broken rule; once none is broken, :func:`clean` returns a
    new frame (parsed times, sub-threshold out-of-range values as missing,
    duplicates dropped, sorted).

    Args:
        readings_path: Parquet or CSV file of readings.
        schema: the dataset contract.
        schema_dir: directory the schema's relative paths are resolved against.
        labels_path: failure log to use instead of the schema's ``label.path``
            (the pipeline's ``labels_uri``: labels kept apart from readings).

    Returns:
        A report whose ``frame`` is sorted by (entity, time) and carries the
        binary label in ``__label__``.

    Raises:
        DataValidationError: listing every rule broken beyond its threshold.
    """
    name = readings_path.name
    frame, assumed = add_implicit_keys(read_table(readings_path), schema, name)
    # Every broken rule in one run: column problems do not hide value problems
    # (rules about a missing column are skipped, the others still run).
    violations, warnings = check_columns(frame, schema, name)
    warnings = assumed + warnings
    if frame.empty:  # "no rows" says it all
        raise DataValidationError(violations)
    times = (
        parse_times(frame[schema.time_column])
        if schema.time_column in frame.columns
        else None
    )
    violations += check_rows(frame, times, schema, name)
    if violations:
        raise DataValidationError(violations)
    assert times is not None  # a missing time column is a violation above
    frame = clean(frame, times, schema)
    if schema.label is None:
        return _unlabeled(readings_path, frame, schema, warnings, labels_path)
    label, label_files = _label(frame, schema, schema_dir, name, labels_path)
    frame[LABEL_COLUMN] = label
    classes = np.unique(label)
    if len(classes) < 2:
        raise DataValidationError(
            [
                f"{name}: label has a single class ({int(classes[0]) if len(classes) else 'none'}) "
                "in every row; a classifier needs both failures and normal operation"
            ]
        )
    entities = int(frame[schema.entity_column].nunique())
    if entities == 1 and schema.entity_column != IMPLICIT_ENTITY:
        warnings.append(
            f"{name}: one entity: the pipeline splits by time only, training rows "
            "ending a label horizon before the holdout (docs/data-contract.md)"
        )
    return ValidationReport(
        path=readings_path,
        rows=len(frame),
        entities=entities,
        positive_share=float(label.mean()),
        data_hash=data_hash([readings_path, *label_files]),
        warnings=warnings,
        frame=frame,
    )


def _unlabeled(
    readings_path: Path,
    frame: pd.DataFrame,
    schema: DatasetSchema,
    warnings: list[str],
    labels_path: Path | None,
) -> ValidationReport:
    """The report for sensor history without labels (an anomaly model's data)."""
    name = readings_path.name
    if labels_path is not None:
        raise DataValidationError(
            [f"{name}: a labels file was given but the schema has no label"]
        )
    warnings.append(
        f"{name}: no label in the schema: the pipeline trains an anomaly model "
        "(alarms on unusual readings, not failure probabilities; docs/pipeline.md)"
    )
    return ValidationReport(
        path=readings_path,
        rows=len(frame),
        entities=int(frame[schema.entity_column].nunique()),
        positive_share=None,
        data_hash=data_hash([readings_path]),
        warnings=warnings,
        frame=frame,
    )


def add_implicit_keys(
    frame: pd.DataFrame, schema: DatasetSchema, name: str
) -> tuple[pd.DataFrame, list[str]]:
    """Add the entity/time columns a schema leaves out; returns (frame, assumptions).

    No entity column: the table is one machine (``unit-1``), split by time. No
    time column: rows are in time order, ``row_interval_seconds`` apart from
    2000-01-01 UTC; lead times and false alarms per asset-month rest on that.
    """
    added: dict[str, Any] = {}
    notes: list[str] = []
    if schema.entity_column == IMPLICIT_ENTITY and IMPLICIT_ENTITY not in frame:
        added[IMPLICIT_ENTITY] = ONE_ENTITY
        notes.append(
            f"{name}: no entity column: the table is one machine ({ONE_ENTITY}); "
            "the pipeline splits by time only, training rows ending a label "
            "horizon before the holdout (docs/data-contract.md)"
        )
    if schema.time_column == IMPLICIT_TIME and IMPLICIT_TIME not in frame:
        step = pd.Timedelta(seconds=schema.row_interval_seconds)
        added[IMPLICIT_TIME] = pd.Timestamp("2000-01-01") + step * np.arange(len(frame))
        notes.append(
            f"{name}: no time column: rows are taken in file order, "
            f"{schema.row_interval_seconds:g} s apart (row_interval_seconds); lead "
            "times and false alarms per asset-month assume it"
        )
    return (frame.assign(**added) if added else frame), notes


def check_columns(
    frame: pd.DataFrame, schema: DatasetSchema, name: str
) -> tuple[list[str], list[str]]:
    """(violations, warnings) about the table's shape: missing/extra columns, no rows."""
    violations: list[str] = []
    warnings: list[str] = []
    missing = [c for c in schema.required_columns() if c not in frame.columns]
    if missing:
        hint = ""
        if len(frame.columns) == 1 and len(missing) > 1:
            hint = (
                f" (the file has one column, {str(frame.columns[0])[:60]!r}: "
                "is its separator unusual? ',', ';', tab and '|' are recognised)"
            )
        violations.append(f"{name}: missing columns: {', '.join(missing)}{hint}")
    extra = sorted(set(frame.columns) - set(schema.required_columns()))
    if extra:
        msg = f"{name}: columns not in the schema: {', '.join(map(str, extra))}"
        if schema.allow_extra_columns:
            warnings.append(msg)
        else:
            violations.append(msg + " (set allow_extra_columns: true to accept)")
    if frame.empty:
        violations.append(f"{name}: no rows")
    return violations, warnings


def parse_times(column: pd.Series) -> pd.Series:
    """Timestamps as naive UTC datetimes; unparseable values become NaT.

    pandas warns when it has to guess formats row by row; the rule ``time``
    reports the rows it could not read instead, so the warning is not shown.
    """
    import warnings

    if pd.api.types.is_datetime64_any_dtype(column):
        times = column
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            times = pd.to_datetime(column, errors="coerce", utc=True)
    if getattr(times.dt, "tz", None) is not None:
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return times


def check_rows(
    frame: pd.DataFrame,
    times: pd.Series | None,
    schema: DatasetSchema,
    name: str,
) -> list[str]:
    """Every rule about the rows, without changing the frame: count, time, features, duplicates.

    Rules about a column the table does not have are skipped (``check_columns``
    reports the column), so one run names every other broken rule too.
    """
    limits = schema.thresholds
    violations: list[str] = []
    if len(frame) < limits.min_rows:
        violations.append(
            f"{name}: {len(frame)} rows, fewer than min_rows {limits.min_rows}"
        )
    if times is not None and times.isna().any():
        bad = times.isna().to_numpy()
        first = int(np.flatnonzero(bad)[0])
        violations.append(
            f"{name}: column '{schema.time_column}': rule time: {bad.mean():.1%} of "
            f"rows are not valid timestamps (first: {_where(frame, first)} has "
            f"{_shown(frame[schema.time_column].iloc[first])})"
        )
    for column in schema.features:
        if column.name in frame.columns:
            violations += _check_feature(frame, column, limits, name)
    if times is not None and schema.entity_column in frame.columns:
        # rows without a valid time are reported above, not as duplicates
        keyed = frame.assign(**{schema.time_column: times})[times.notna().to_numpy()]
        violations += _check_duplicates(keyed, schema, name)
    return violations


def _where(frame: pd.DataFrame, position: int) -> str:
    """'row N' counted like a spreadsheet of the file: the header is row 1."""
    return f"row {position + 2}"


def _shown(value: object) -> str:
    """A value as the user wrote it (numpy scalars as plain numbers), short."""
    item = getattr(value, "item", None)
    text = repr(item() if callable(item) else value)
    return text if len(text) <= 40 else text[:37] + "..."


def clean(frame: pd.DataFrame, times: pd.Series, schema: DatasetSchema) -> pd.DataFrame:
    """A new frame ready for features; the input is not changed.

    Parsed times; out-of-range values under the threshold become missing (a
    spike never reaches training as if it were a physical reading); the first
    of each duplicated (entity, time) is kept; sorted by entity and time.
    """
    out = frame.assign(**{schema.time_column: times})
    for column in schema.features:
        out[column.name] = _in_range(
            pd.to_numeric(out[column.name], errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            ),
            column.min,
            column.max,
        )
    keys = [schema.entity_column, schema.time_column]
    out = out.drop_duplicates(keys, keep="first")
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


def _in_range(values: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    """``values`` with non-finite and out-of-range entries set to NaN (a copy)."""
    bad = ~np.isnan(values) & ~np.isfinite(values)
    if low is not None:
        bad |= values < low
    if high is not None:
        bad |= values > high
    values = values.copy()
    values[bad] = np.nan
    return values


def _check_feature(
    frame: pd.DataFrame, column: FeatureColumn, limits: Thresholds, name: str
) -> list[str]:
    col, low, high, unit = column.name, column.min, column.max, column.unit
    series = frame[col]
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        numeric = pd.to_numeric(series, errors="coerce")
        bad = (numeric.isna() & series.notna()).to_numpy()
        if pd.api.types.is_bool_dtype(series):
            bad = series.notna().to_numpy()
        if not bad.any():  # numbers stored as text: read them as numbers
            series = numeric
        else:
            first = int(np.flatnonzero(bad)[0])
            return [
                f"{name}: column '{col}': rule dtype: expected numeric, "
                f"{_where(frame, first)} has {_shown(series.iloc[first])} "
                f"({int(bad.sum())} value(s) not numeric)"
            ]
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    out: list[str] = []
    if column.dtype == "int":
        finite = np.isfinite(values)
        fractional = finite & (values != np.round(values))
        if fractional.any():
            first = int(np.flatnonzero(fractional)[0])
            out.append(
                f"{name}: column '{col}': rule dtype: expected int, "
                f"{_where(frame, first)} has {_shown(series.iloc[first])} "
                f"({int(fractional.sum())} value(s) not whole numbers)"
            )
    nan_share = float(np.isnan(values).mean())
    if nan_share > limits.max_nan_share:
        out.append(
            f"{name}: column '{col}': rule nan_share: {nan_share:.1%} missing "
            f"(max allowed {limits.max_nan_share:.1%})"
        )
    outside = ~np.isnan(values) & ~np.isfinite(values)
    if low is not None:
        outside |= values < low
    if high is not None:
        outside |= values > high
    share = float(outside.sum() / len(values)) if len(values) else 0.0
    if share > limits.max_out_of_range_share:
        bounds = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}] {unit}".strip()
        first = int(np.flatnonzero(outside)[0])
        out.append(
            f"{name}: column '{col}': rule out_of_range: {share:.1%} of rows outside "
            f"{bounds} (max allowed {limits.max_out_of_range_share:.1%}; first: "
            f"{_where(frame, first)} has {_shown(series.iloc[first])})"
        )
    return out


def _check_duplicates(
    frame: pd.DataFrame, schema: DatasetSchema, name: str
) -> list[str]:
    keys = [schema.entity_column, schema.time_column]
    share = float(frame.duplicated(keys).mean())
    if share > schema.thresholds.max_duplicate_share:
        return [
            f"{name}: columns ({', '.join(keys)}): rule duplicates: {share:.2%} of rows "
            f"repeat an (entity, time) pair (max allowed {schema.thresholds.max_duplicate_share:.2%})"
        ]
    return []


def _label(
    frame: pd.DataFrame,
    schema: DatasetSchema,
    schema_dir: Path,
    name: str,
    labels_path: Path | None = None,
) -> tuple[np.ndarray, list[Path]]:
    spec = schema.label
    if isinstance(spec, ColumnLabel):
        if labels_path is not None:
            raise DataValidationError(
                [
                    f"{name}: a labels file was given but the schema's label is the "
                    f"column '{spec.column}' (use kind: failure_log to read a log)"
                ]
            )
        raw = frame[spec.column]
        values = pd.to_numeric(raw, errors="coerce")
        if values.isna().any() or not values.isin([0, 1]).all():
            raise DataValidationError(
                [f"{name}: column '{spec.column}': rule label: values must be 0 or 1"]
            )
        return values.to_numpy(dtype=np.int8), []
    assert isinstance(spec, FailureLogLabel)
    if schema.time_column == IMPLICIT_TIME:
        raise DataValidationError(
            [
                f"{name}: a failure log needs times to match failures to readings; "
                "name the readings' time_column or use a label column (kind: column)"
            ]
        )
    one_machine = schema.entity_column == IMPLICIT_ENTITY
    if not spec.entity_column and not one_machine:
        raise DataValidationError(
            [
                f"{name}: label.entity_column is required: the readings have "
                f"entities ('{schema.entity_column}') and the log must say which failed"
            ]
        )
    log_path = labels_path if labels_path is not None else schema_dir / spec.path
    log = read_table(log_path)
    wanted = [spec.time_column] + ([] if one_machine else [spec.entity_column])
    missing = [c for c in wanted if c not in log.columns]
    if missing:
        raise DataValidationError(
            [f"{log_path.name}: missing columns: {', '.join(missing)}"]
        )
    failed_at = pd.to_datetime(
        log[spec.time_column], errors="coerce", utc=True
    ).dt.tz_localize(None)
    if failed_at.isna().any():
        raise DataValidationError(
            [
                f"{log_path.name}: column '{spec.time_column}': rule time: "
                f"{failed_at.isna().mean():.1%} of rows are not valid timestamps"
            ]
        )
    return failure_within_horizon(
        frame[schema.entity_column].astype(str).to_numpy(),
        frame[schema.time_column].to_numpy(dtype="datetime64[ns]"),
        np.full(len(log), ONE_ENTITY)
        if one_machine
        else log[spec.entity_column].astype(str).to_numpy(),
        failed_at.to_numpy(dtype="datetime64[ns]"),
        np.timedelta64(int(spec.horizon_hours * 3600), "s"),
    ), [log_path]


def check(
    path: Path, schema_path: Path | None = None, labels_path: Path | None = None
) -> tuple[ValidationReport, DatasetSchema]:
    """Resolve PATH (+ optional schema and failure log) and validate: the CLI's and step's entry."""
    readings, schema = resolve_inputs(path, schema_path)
    schema_dir = (
        Path(schema_path).parent
        if schema_path
        else (path if Path(path).is_dir() else Path(path).parent)
    )
    report = validate_dataset(readings, schema, Path(schema_dir), labels_path)
    return report, schema
