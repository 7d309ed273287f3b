import numpy as np
import pytest

from edgeloop_agent.contracts import verify_bundle
from edgeloop_agent.drift.monitor import WindowMonitor
from edgeloop_agent.features import window_features
from edgeloop_agent.settings import DriftSettings, NodeSettings


class Clock:
    def __init__(self):
        self.now = 1_000.0

    def __call__(self):
        return self.now


def reference_rows(manifest):
    return np.array(
        [
            [np.nan if v is None else v for v in r]
            for r in manifest.reference_sample.inputs
        ],
        dtype=np.float32,
    )


@pytest.fixture()
def manifest(bundle):
    return verify_bundle(bundle)


def monitor(manifest, clock=None, **settings):
    return WindowMonitor(
        manifest,
        "1",
        DriftSettings(**settings),
        NodeSettings(id="n", site="s"),
        clock or Clock(),
    )


def test_window_closes_after_n_readings_and_counts_add_up(manifest):
    mon = monitor(manifest, window_readings=50, sample_size=5)
    x = reference_rows(manifest)
    closed = mon.observe(x[:120], np.linspace(0, 1, 120))
    assert [w.rows for w, _ in closed] == [50, 50]
    assert mon.rows == 20
    for window, sample in closed:
        assert sum(window.features[0].counts) + window.features[0].nan_count == 50
        assert sum(window.score_counts) == 50
        assert len(sample.rows) == 5 and len(sample.columns) == len(window.features)


def test_the_row_sample_keeps_each_rows_values_gaps_and_scores(manifest):
    """A sampled row is the stored row: float32 values as floats, NaN as null."""
    x = reference_rows(manifest)[:10].copy()
    x[:, 0] = np.nan  # a missing input in every row
    scores = np.linspace(0.05, 0.95, 10)
    scores[3] = np.nan  # a row the model did not score
    mon = monitor(manifest, window_readings=10, sample_size=10)
    ((_, sample),) = mon.observe(x, scores)
    assert len(sample.rows) == 10  # every row, in order
    for row, stored, score, kept in zip(
        x, sample.rows, scores, sample.scores, strict=True
    ):
        assert stored[0] is None
        assert list(stored[1:]) == [
            float(v) if not np.isnan(v) else None for v in row[1:]
        ]
        assert all(v is None or type(v) is float for v in stored)
        assert kept == (None if np.isnan(score) else float(score))


def draw_from_reference(manifest, n, rng):
    """Rows drawn from the reference histograms themselves (no drift by construction)."""
    columns = []
    for ref in manifest.reference:
        counts = np.asarray(ref.counts, dtype=float)
        edges = np.asarray(ref.bin_edges)
        bins = rng.choice(len(counts), size=n, p=counts / counts.sum())
        columns.append(rng.uniform(edges[bins], edges[bins + 1]))
    return np.stack(columns, axis=1).astype(np.float32)


def test_reference_data_does_not_drift_shifted_data_does(manifest):
    rng = np.random.default_rng(0)
    same = draw_from_reference(manifest, 600, rng)
    ((window, _),) = monitor(manifest, window_readings=600).observe(same, np.zeros(600))
    assert window.drifted_share < 0.2
    shifted = same * 1.8 + 5
    ((window, _),) = monitor(manifest, window_readings=600).observe(
        shifted, np.zeros(600)
    )
    assert window.drifted_share > 0.5


def test_window_closes_on_time(manifest):
    clock = Clock()
    mon = monitor(manifest, clock, window_seconds=60)
    mon.observe(reference_rows(manifest)[:3], np.zeros(3))
    assert not mon.due()
    clock.now += 61
    assert mon.due()
    window, _ = mon.close()
    assert window.rows == 3 and (
        window.window_end - window.window_start
    ).total_seconds() == pytest.approx(61)
    assert not mon.due()


def test_quality_flags_nan_out_of_range_stuck_and_spikes(manifest):
    sensors = manifest.features.sensors
    mon = monitor(manifest, window_readings=100, stuck_readings=10, spike_sigmas=8)
    raw = np.tile(
        np.array([2.0, 40.0, 150.0, 90.0, 4.0, 200.0, 2950.0, 15.0]), (100, 1)
    )
    raw += np.random.default_rng(1).normal(0, 0.01, raw.shape)
    raw[:, 1] = 55.0  # bearing_temp stuck for entity p1
    raw[10:20, 5] = np.nan  # flow dropout
    raw[30, 0] = 65.0  # vibration spike, above its 50 mm/s range
    entities = ["p1"] * 100
    x = np.zeros((100, len(manifest.features.input_names())), dtype=np.float32)
    ((window, _),) = mon.observe(x, np.zeros(100), raw, entities)
    q = {s.name: s for s in window.quality}
    assert set(q) == set(sensors)
    assert q["flow_rate"].nan_count == 10
    assert q["vibration_rms"].out_of_range == 1 and q["vibration_rms"].spikes == 2
    assert q["bearing_temp"].stuck_entities == ("p1",)
    assert q["motor_current"].stuck_entities == ()


def test_a_batch_of_many_pumps_keeps_the_same_quality_as_one_reading_at_a_time(
    manifest,
):
    """Stuck runs and spikes are tracked per pump in order, however readings are batched."""
    rng = np.random.default_rng(3)
    n = 120
    raw = np.tile(np.array([2.0, 40.0, 150.0, 90.0, 4.0, 200.0, 2950.0, 15.0]), (n, 1))
    raw += rng.normal(0, 0.01, raw.shape)
    entities = [f"p{i}" for i in rng.integers(0, 6, n)]  # interleaved, repeated
    for i, entity in enumerate(entities):
        if entity == "p2":
            raw[i, 1] = 55.0  # stuck for p2 only
        if entity == "p4" and i % 7 == 0:
            raw[i, 0] = 30.0  # p4 spikes now and then
    raw[rng.integers(0, n, 10), 5] = np.nan  # dropouts break runs
    x = np.zeros((n, len(manifest.features.input_names())), dtype=np.float32)
    windows = []
    for split in (n, 1, 17):  # all at once, one by one, uneven batches
        mon = monitor(manifest, window_readings=n, stuck_readings=8, spike_sigmas=8)
        closed = []
        for start in range(0, n, split):
            stop = min(n, start + split)
            closed += mon.observe(
                x[start:stop],
                np.zeros(stop - start),
                raw[start:stop],
                entities[start:stop],
            )
        ((window, _),) = closed
        windows.append({q.name: q for q in window.quality})
    assert windows[0] == windows[1] == windows[2]
    assert windows[0]["bearing_temp"].stuck_entities == ("p2",)
    assert windows[0]["vibration_rms"].spikes > 0


def test_raw_history_path_matches_window_features(manifest):
    spec = manifest.features
    history = np.random.default_rng(2).normal(
        size=(4, max(spec.windows), len(spec.sensors))
    )
    inputs = window_features(history, spec)
    assert inputs.shape == (4, len(spec.input_names()))
