import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from edgeloop_components import validation
from edgeloop_components.errors import DataValidationError, SchemaError


@pytest.fixture()
def dataset(fleet_dir, tmp_path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(fleet_dir, dst)
    return dst


def rewrite(dataset: Path, change) -> None:
    frame = pd.read_parquet(dataset / "readings.parquet")
    frame = change(frame)
    frame.to_parquet(dataset / "readings.parquet", index=False)


def edit_schema(dataset: Path, change) -> None:
    data = yaml.safe_load((dataset / "schema.yaml").read_text())
    change(data)
    (dataset / "schema.yaml").write_text(yaml.safe_dump(data))


def violations(dataset: Path, schema: Path | None = None) -> list[str]:
    with pytest.raises(DataValidationError) as info:
        validation.check(dataset, schema)
    return info.value.violations


def test_simulated_fleet_is_valid_and_labelled(dataset):
    report, schema = validation.check(dataset)
    assert report.rows > 10_000
    assert report.entities == 12
    assert 0 < report.positive_share < 0.5
    assert set(report.frame[validation.LABEL_COLUMN].unique()) == {0, 1}
    assert len(report.data_hash) == 64


def test_data_hash_changes_with_the_data(dataset):
    before = validation.check(dataset)[0].data_hash
    rewrite(dataset, lambda f: f.iloc[:-1])
    assert validation.check(dataset)[0].data_hash != before


def test_missing_column_is_named(dataset):
    rewrite(dataset, lambda f: f.drop(columns=["bearing_temp"]))
    assert violations(dataset) == ["readings.parquet: missing columns: bearing_temp"]


def test_extra_columns_are_refused_unless_allowed(dataset):
    edit_schema(dataset, lambda s: s.update(allow_extra_columns=False))
    (msg,) = violations(dataset)
    assert "columns not in the schema: regime" in msg and "allow_extra_columns" in msg


def test_wrong_dtype_names_column_rule_and_example(dataset):
    rewrite(
        dataset,
        lambda f: f.assign(
            flow_rate=f["flow_rate"].astype(str).where(f.index != 3, "broken")
        ),
    )
    (msg,) = violations(dataset)
    # the offending value and its row (header = row 1), not the column's first value
    assert msg == (
        "readings.parquet: column 'flow_rate': rule dtype: expected numeric, "
        "row 5 has 'broken' (1 value(s) not numeric)"
    )


def test_out_of_range_share_is_reported_with_bounds(dataset):
    def heat(f):
        f.loc[f.index[: len(f) // 20], "bearing_temp"] = 400.0
        return f

    rewrite(dataset, heat)
    (msg,) = violations(dataset)
    assert (
        "column 'bearing_temp': rule out_of_range: 5.0% of rows outside [-40.0, 150.0] degC"
        in msg
    )
    assert "max allowed 1.0%" in msg


def test_small_out_of_range_share_becomes_missing_not_training_data(dataset):
    rewrite(
        dataset,
        lambda f: f.assign(
            vibration_rms=f["vibration_rms"].where(f.index != 10, 999.0)
        ),
    )
    report, _ = validation.check(dataset)
    assert report.frame["vibration_rms"].max() <= 50.0


def test_nan_share_is_reported(dataset):
    rewrite(
        dataset,
        lambda f: f.assign(
            motor_current=np.where(f.index % 5 == 0, np.nan, f["motor_current"])
        ),
    )
    (msg,) = violations(dataset)
    assert (
        "column 'motor_current': rule nan_share: 20.0% missing (max allowed 5.0%)"
        in msg
    )


def test_duplicate_entity_time_rows_are_reported(dataset):
    rewrite(dataset, lambda f: pd.concat([f, f.iloc[:100]]))
    (msg,) = violations(dataset)
    assert "columns (pump_id, timestamp): rule duplicates" in msg


def test_empty_data_is_reported(dataset):
    rewrite(dataset, lambda f: f.iloc[:0])
    assert violations(dataset) == ["readings.parquet: no rows"]


def test_single_class_label_is_reported(dataset):
    (dataset / "maintenance_log.csv").write_text("pump_id,failed_at\n")
    (msg,) = violations(dataset)
    assert "label has a single class (0)" in msg


def test_every_violation_is_collected(dataset):
    rewrite(dataset, lambda f: f.assign(bearing_temp=900.0, motor_current=np.nan))
    found = violations(dataset)
    assert any("bearing_temp" in v for v in found) and any(
        "motor_current" in v for v in found
    )


def test_thresholds_are_configurable(dataset):
    rewrite(
        dataset,
        lambda f: f.assign(
            motor_current=np.where(f.index % 5 == 0, np.nan, f["motor_current"])
        ),
    )
    edit_schema(dataset, lambda s: s["thresholds"].update(max_nan_share=0.3))
    report, _ = validation.check(dataset)
    assert report.rows > 0


def test_label_column_instead_of_failure_log(dataset, tmp_path):
    frame = pd.read_parquet(dataset / "readings.parquet")
    frame["failed_soon"] = (
        frame["vibration_rms"] > frame["vibration_rms"].quantile(0.9)
    ).astype(int)
    csv = tmp_path / "mine.csv"
    frame.to_csv(csv, index=False)
    schema = yaml.safe_load((dataset / "schema.yaml").read_text())
    schema["label"] = {"kind": "column", "column": "failed_soon"}
    schema["readings"] = "mine.csv"
    (tmp_path / "my-schema.yaml").write_text(yaml.safe_dump(schema))
    report, _ = validation.check(csv, tmp_path / "my-schema.yaml")
    assert report.positive_share == pytest.approx(0.1, abs=0.01)


def test_schema_errors_name_file_and_field(dataset, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("entity_column: pump_id\n")
    with pytest.raises(SchemaError, match=r"bad.yaml: features: Field required"):
        validation.check(dataset, bad)
    bad.write_text("a: [\n")
    with pytest.raises(SchemaError, match="not valid YAML"):
        validation.check(dataset, bad)
    with pytest.raises(SchemaError, match="no schema found; pass --schema FILE"):
        validation.resolve_inputs(tmp_path, None)
    with pytest.raises(SchemaError, match="no such file or directory"):
        validation.check(tmp_path / "absent")


def test_unsupported_file_type(dataset, tmp_path):
    odd = tmp_path / "readings.xlsx"
    odd.write_bytes(b"x")
    with pytest.raises(DataValidationError, match="unsupported file type '.xlsx'"):
        validation.check(odd, dataset / "schema.yaml")


def test_failure_within_horizon_labels_only_the_window_before_a_failure():
    t = np.array(
        ["2026-01-01T00", "2026-01-01T10", "2026-01-02T00", "2026-01-02T01"],
        dtype="datetime64[ns]",
    )
    e = np.array(["p1", "p1", "p1", "p2"])
    fails_e = np.array(["p1"])
    fails_t = np.array(["2026-01-02T00"], dtype="datetime64[ns]")
    label = validation.failure_within_horizon(
        e, t, fails_e, fails_t, np.timedelta64(20, "h")
    )
    assert label.tolist() == [0, 1, 0, 0]


def as_csv(dataset: Path, name: str, **to_csv) -> None:
    frame = pd.read_parquet(dataset / "readings.parquet")
    frame.to_csv(dataset / name, index=False, **to_csv)
    (dataset / "readings.parquet").unlink()
    edit_schema(dataset, lambda s: s.update(readings=name))


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("readings.csv.gz", {"compression": "gzip"}),
        ("readings.csv", {"sep": ";", "decimal": ","}),
        ("readings.csv", {"sep": "\t"}),
    ],
)
def test_gzip_and_semicolon_and_tab_csv_read_like_parquet(dataset, name, options):
    expected, _ = validation.check(dataset)
    if options.get("decimal") == ",":
        options = {
            "sep": ";"
        }  # decimal commas need a schema field; ';' alone is sniffed
    as_csv(dataset, name, **options)
    report, _ = validation.check(dataset)
    assert report.rows == expected.rows and report.entities == expected.entities


def test_an_unrecognised_separator_gets_a_hint(dataset):
    as_csv(dataset, "readings.csv", sep="#")
    (msg, *_) = violations(dataset)
    assert msg.startswith("readings.csv: missing columns:")
    assert "is its separator unusual?" in msg


def test_int_dtype_is_enforced_with_the_offending_row(dataset):
    edit_schema(
        dataset,
        lambda s: next(f for f in s["features"] if f["name"] == "speed_rpm").update(
            dtype="int"
        ),
    )
    rewrite(dataset, lambda f: f.assign(speed_rpm=f["speed_rpm"].round()))
    validation.check(dataset)  # whole numbers pass
    rewrite(
        dataset,
        lambda f: f.assign(speed_rpm=f["speed_rpm"].where(f.index != 7, 2950.5)),
    )
    (msg,) = violations(dataset)
    assert msg == (
        "readings.parquet: column 'speed_rpm': rule dtype: expected int, "
        "row 9 has 2950.5 (1 value(s) not whole numbers)"
    )


def test_bad_timestamps_are_one_rule_without_warnings_or_false_duplicates(
    dataset, recwarn
):
    as_csv(dataset, "readings.csv")
    frame = pd.read_csv(dataset / "readings.csv")
    frame.loc[frame.index[::2], "timestamp"] = "yesterday-ish"
    frame.to_csv(dataset / "readings.csv", index=False)
    found = violations(dataset)
    assert len(found) == 1 and "rule time: 50.0% of rows" in found[0]
    assert "row 2 has 'yesterday-ish'" in found[0]
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_column_problems_do_not_hide_value_problems(dataset):
    rewrite(
        dataset,
        lambda f: f.drop(columns=["bearing_temp"]).assign(motor_current=np.nan),
    )
    found = violations(dataset)
    assert found[0] == "readings.parquet: missing columns: bearing_temp"
    assert any("motor_current" in v and "nan_share" in v for v in found[1:])


def test_every_broken_schema_field_is_named(dataset, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("entity_column: [1]\nfeatures: []\nrow_interval_seconds: -1\n")
    with pytest.raises(SchemaError) as info:
        validation.check(dataset, bad)
    message = str(info.value)
    for field in ("entity_column", "features", "row_interval_seconds"):
        assert f"{field}:" in message


def test_one_entity_validates_with_a_stated_time_split(dataset):
    log = pd.read_csv(dataset / "maintenance_log.csv")
    pump = str(log["pump_id"].iloc[0])
    rewrite(dataset, lambda f: f[f["pump_id"] == pump])
    report, _ = validation.check(dataset)
    assert report.entities == 1
    assert any(
        "one entity: the pipeline splits by time only" in w for w in report.warnings
    )
