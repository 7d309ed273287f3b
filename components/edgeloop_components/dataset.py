"""The dataset contract: a YAML file that describes any user's sensor table.

The training pipeline never assumes the simulator's layout; it reads a
:class:`DatasetSchema` that names the entity and time columns, each feature's
dtype, unit and valid physical range, how the label is defined, and the slice
columns to evaluate on. ``edgeloop data simulate`` writes one for its output.

Pure pydantic + PyYAML: no pandas here, so the CLI can parse a schema cheaply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edgeloop_agent.contracts import SensorSpec
from edgeloop_components.errors import SchemaError

DATASET_API_VERSION: Final = "edgeloop.io/dataset/v1"
SCHEMA_FILE = "schema.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeatureColumn(_Model):
    """A numeric sensor column."""

    name: str = Field(min_length=1)
    dtype: Literal["float", "int"] = "float"
    unit: str = ""
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _range_ordered(self) -> FeatureColumn:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"feature {self.name!r}: min {self.min} > max {self.max}")
        return self

    def sensor_spec(self) -> SensorSpec:
        """The edge-side view of this column."""
        return SensorSpec(name=self.name, unit=self.unit, min=self.min, max=self.max)


IMPLICIT_ENTITY: Final = "__entity__"
"""Entity column added when the schema names none: the table is one machine."""
IMPLICIT_TIME: Final = "__time__"
"""Time column added when the schema names none: rows in file order."""
ONE_ENTITY: Final = "unit-1"
"""The one machine's name when the table has no entity column."""


class FailureLogLabel(_Model):
    """Label = a failure of the same entity within ``horizon_hours`` after the reading."""

    kind: Literal["failure_log"] = "failure_log"
    path: str
    """CSV file of failures (work orders), relative to the schema file."""
    entity_column: str = ""
    """Empty when the readings are one machine (no ``entity_column``)."""
    time_column: str
    horizon_hours: float = Field(gt=0)


class ColumnLabel(_Model):
    """Label = an existing 0/1 column of the readings table."""

    kind: Literal["column"] = "column"
    column: str


Label = Annotated[FailureLogLabel | ColumnLabel, Field(discriminator="kind")]


class Thresholds(_Model):
    """How much imperfection the data may carry before a run stops (shares 0..1)."""

    max_nan_share: float = Field(0.05, ge=0, le=1)
    max_out_of_range_share: float = Field(0.01, ge=0, le=1)
    max_duplicate_share: float = Field(0.0, ge=0, le=1)
    min_rows: int = Field(100, ge=1)


class DatasetSchema(_Model):
    """``schema.yaml``: the contract a readings table must meet."""

    apiVersion: Literal["edgeloop.io/dataset/v1"] = DATASET_API_VERSION
    name: str = "dataset"
    readings: str = "readings.parquet"
    """Readings file (Parquet or CSV), relative to the schema file."""
    entity_column: str = IMPLICIT_ENTITY
    """Omitted: the whole table is one machine (docs/data-contract.md, "Your data")."""
    time_column: str = IMPLICIT_TIME
    """Omitted: rows are in time order, ``row_interval_seconds`` apart."""
    row_interval_seconds: float = Field(60.0, gt=0)
    """Time between rows when there is no time column (an assumption, stated)."""
    features: list[FeatureColumn] = Field(min_length=1)
    label: Label | None = None
    """Omitted: unlabeled history; the pipeline trains an anomaly model
    (:mod:`edgeloop_components.anomaly`) instead of a failure classifier."""
    slices: list[str] = Field(default_factory=list)
    allow_extra_columns: bool = False
    thresholds: Thresholds = Field(default_factory=Thresholds)

    @model_validator(mode="after")
    def _names_unique(self) -> DatasetSchema:
        names = [self.entity_column, self.time_column, *self.feature_names()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"column names used twice: {', '.join(dupes)}")
        return self

    def feature_names(self) -> list[str]:
        """Feature column names in schema order."""
        return [f.name for f in self.features]

    def required_columns(self) -> list[str]:
        """Every column the readings table must have."""
        cols = [self.entity_column, self.time_column, *self.feature_names()]
        cols += [s for s in self.slices if s not in cols]
        if isinstance(self.label, ColumnLabel) and self.label.column not in cols:
            cols.append(self.label.column)
        return cols


MAX_SCHEMA_BYTES = 2**20
"""Schemas and profiles are written by hand: a megabyte is already a mistake."""
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's C safe loader where available (PyYAML's wheels have it)."""


def load_schema(path: Path) -> DatasetSchema:
    """Read and validate a schema file.

    Raises:
        SchemaError: missing file, bad YAML or a field that breaks the contract,
            named with its location.
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_SCHEMA_BYTES:
            raise SchemaError(
                f"{path}: larger than {MAX_SCHEMA_BYTES} bytes; a schema file is small"
            )
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)  # noqa: S506
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read schema ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise SchemaError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise SchemaError(f"{path}: schema must be a YAML mapping")
    try:
        return DatasetSchema.model_validate(raw)
    except ValidationError as exc:
        # every broken field, in one message (the first one leads)
        problems = [
            f"{'.'.join(str(p) for p in error['loc']) or '<root>'}: {error['msg']}"
            for error in exc.errors()
        ]
        raise SchemaError(f"{path}: {'; '.join(problems)}") from exc


def dump_schema(schema: DatasetSchema, path: Path) -> None:
    """Write a schema file in stable key order."""
    data = schema.model_dump(mode="json", exclude_none=True)
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
