"""Alarm explanations on the node: occlusion against the reference medians."""

from __future__ import annotations

import numpy as np

from edgeloop_agent.scoring.explain import Explainer


def toy() -> Explainer:
    # sensor a feeds input 0, sensor b inputs 1-2, sensor c input 3; medians 0
    return Explainer(
        medians=np.zeros(4, dtype=np.float32),
        groups=(
            ("a", np.array([0])),
            ("b", np.array([1, 2])),
            ("c", np.array([3])),
        ),
    )


def linear(x: np.ndarray) -> np.ndarray:
    weights = np.array([0.5, 0.1, 0.1, -0.2])
    return np.nansum(x * weights, axis=1)  # a missing input adds nothing


def test_sensors_are_ranked_by_how_much_ordinary_values_lower_the_score():
    x = np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 3.0, 3.0, -1.0]], dtype=np.float32)
    (first, second) = toy().explain(linear, x, linear(x), top=3)
    assert [s for s, _ in first] == ["a", "b"]  # c lowers the score: not named
    assert first[0][1] == 0.5 and abs(first[1][1] - 0.2) < 1e-6
    assert [s for s, _ in second] == ["b", "c"]
    assert toy().explain(linear, x, linear(x), top=1)[1] == (("b", 0.6),)


def test_a_missing_sensor_is_not_blamed_and_an_empty_batch_is_fine():
    x = np.array([[np.nan, 2.0, 0.0, 0.0]], dtype=np.float32)
    # a is missing in the reading: its median does not change the score either
    assert toy().explain(linear, x, linear(x), top=3) == [(("b", 0.2),)]
    assert toy().explain(linear, x[:0], linear(x[:0]), top=3) == []
    assert toy().explain(linear, x, linear(x), top=0) == [()]
