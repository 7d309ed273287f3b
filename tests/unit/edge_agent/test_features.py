import numpy as np
import pandas as pd
import pytest

from edgeloop_agent.contracts import FeatureSpec
from edgeloop_agent.features import history_length, rolling_features, window_features

SPEC = FeatureSpec(
    sensors=("a", "b"),
    windows=(3, 5),
    aggregates=("mean", "std", "slope", "max", "min", "last"),
)


def naive(values: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Reference implementation with pandas, one row at a time."""
    rows = []
    for i in range(len(values)):
        row = []
        for w in spec.windows:
            for s in range(values.shape[1]):
                win = pd.Series(values[max(0, i - w + 1) : i + 1, s])
                valid = win.dropna()
                for agg in spec.aggregates:
                    if agg == "mean":
                        row.append(valid.mean() if len(valid) else np.nan)
                    elif agg == "std":
                        row.append(valid.std(ddof=0) if len(valid) else np.nan)
                    elif agg == "max":
                        row.append(valid.max() if len(valid) else np.nan)
                    elif agg == "min":
                        row.append(valid.min() if len(valid) else np.nan)
                    elif agg == "last":
                        row.append(values[i, s])
                    elif agg == "slope":
                        offset = w - len(win)
                        x = np.arange(offset, w)[valid.index.to_numpy()]
                        row.append(
                            np.polyfit(x, valid.to_numpy(), 1)[0]
                            if len(valid) >= 2
                            else np.nan
                        )
        rows.append(row)
    return np.asarray(rows, dtype=np.float64)


def test_rolling_features_match_a_naive_reference_including_gaps():
    rng = np.random.default_rng(3)
    values = rng.normal(10, 2, size=(40, 2))
    values[[4, 5, 17], 0] = np.nan
    values[30:34, 1] = np.nan
    got = rolling_features(values, SPEC)
    want = naive(values, SPEC)
    np.testing.assert_allclose(
        got, want.astype(np.float32), rtol=1e-5, atol=1e-5, equal_nan=True
    )


def test_edge_window_equals_training_row():
    rng = np.random.default_rng(5)
    values = rng.normal(size=(20, 2))
    training = rolling_features(values, SPEC)
    history = values[-history_length(SPEC) :][None, :, :]
    edge = window_features(history, SPEC)
    np.testing.assert_array_equal(edge[0], training[-1])


def test_slope_of_a_line_is_its_step():
    spec = FeatureSpec(sensors=("a",), windows=(6,), aggregates=("slope",))
    values = (2.5 * np.arange(10) + 1.0)[:, None]
    assert rolling_features(values, spec)[-1, 0] == pytest.approx(2.5)


def test_first_rows_see_only_the_past():
    spec = FeatureSpec(sensors=("a",), windows=(4,), aggregates=("mean", "last"))
    values = np.array([[1.0], [3.0], [100.0]])
    out = rolling_features(values, spec)
    assert out[0].tolist() == [1.0, 1.0]
    assert out[1].tolist() == [2.0, 3.0]


def test_all_missing_window_gives_nan_without_warnings():
    spec = FeatureSpec(
        sensors=("a",), windows=(3,), aggregates=("mean", "std", "slope", "max", "min")
    )
    out = window_features(np.full((1, 3, 1), np.nan), spec)
    assert np.isnan(out).all()


def test_wrong_history_shape_is_rejected():
    with pytest.raises(ValueError, match=r"history must have shape \(batch, 5, 2\)"):
        window_features(np.zeros((1, 4, 2)), SPEC)
    with pytest.raises(ValueError, match=r"readings must have shape \(n, 2\)"):
        rolling_features(np.zeros((4, 3)), SPEC)


def test_input_names_follow_window_sensor_aggregate_order():
    spec = FeatureSpec(sensors=("a", "b"), windows=(2,), aggregates=("mean", "max"))
    assert spec.input_names() == ["a__mean_w2", "a__max_w2", "b__mean_w2", "b__max_w2"]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"windows": (0,)}, "distinct positive"),
        ({"windows": (3, 3)}, "distinct positive"),
        ({"aggregates": ("median",)}, "Input should be"),
        ({"sensors": ()}, "at least 1"),
    ],
)
def test_feature_spec_rejects_bad_values(fields, message):
    base = {"sensors": ("a",), "windows": (3,), "aggregates": ("mean",)}
    with pytest.raises(ValueError, match=message):
        FeatureSpec.model_validate({**base, **fields})
