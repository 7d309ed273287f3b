import numpy as np
import pytest

from edgeloop_agent.features import bin_counts, psi, reference_edges


def test_reference_edges_are_deciles_of_finite_values():
    values = np.concatenate([np.arange(101, dtype=float), [np.nan, np.inf]])
    edges = reference_edges(values)
    assert edges[0] == 0.0 and edges[-1] == 100.0
    assert len(edges) == 11


def test_constant_column_gets_one_bin():
    assert reference_edges(np.full(10, 3.0)) == (2.5, 3.5)
    assert reference_edges(np.array([np.nan])) == (-0.5, 0.5)


def test_bin_counts_clip_outliers_into_end_bins_and_count_nan_apart():
    edges = (0.0, 1.0, 2.0, 3.0)
    counts, nan = bin_counts(np.array([-5.0, 0.5, 1.0, 2.5, 9.0, np.nan]), edges)
    assert counts == [2, 1, 2]
    assert nan == 1


def test_counts_merge_by_addition():
    edges = reference_edges(np.random.default_rng(0).normal(size=1000))
    a = np.random.default_rng(1).normal(size=300)
    b = np.random.default_rng(2).normal(size=200)
    ca, _ = bin_counts(a, edges)
    cb, _ = bin_counts(b, edges)
    cab, _ = bin_counts(np.concatenate([a, b]), edges)
    assert [x + y for x, y in zip(ca, cb, strict=True)] == cab


def test_psi_is_zero_for_same_distribution_and_grows_with_shift():
    ref = np.array([100, 100, 100, 100])
    assert psi(ref, ref) == pytest.approx(0.0)
    assert psi(ref, np.array([10, 40, 150, 200])) > 0.25
    assert psi(ref, np.array([0, 0, 0, 0])) == 0.0
