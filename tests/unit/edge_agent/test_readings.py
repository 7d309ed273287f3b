import math

import numpy as np
import pytest

from edgeloop_agent.errors import InputError
from edgeloop_agent.readings import parse_entity, parse_values

SENSORS = ("a", "b")


def test_values_in_model_order_and_null_is_missing():
    out = parse_values({"b": 2, "a": None}, SENSORS)
    assert math.isnan(out[0]) and out[1] == 2.0


@pytest.mark.parametrize(
    "values, message",
    [
        ({"a": 1}, "values.b: missing sensor"),
        ({"a": 1, "b": 2, "c": 3}, "values.c: unknown sensor"),
        ({"a": "1", "b": 2}, "values.a: expected a number or null, got str"),
        ({"a": True, "b": 2}, "values.a: expected a number or null, got bool"),
        ({"a": float("nan"), "b": 2}, "values.a: must be finite"),
        ({"a": float("inf"), "b": 2}, "values.a: must be finite"),
        ([1, 2], "values: expected an object"),
    ],
)
def test_bad_values_name_the_field(values, message):
    with pytest.raises(InputError, match=message):
        parse_values(values, SENSORS)


def test_entity():
    assert parse_entity("p1") == "p1"
    for bad in ("", None, "x" * 300):
        with pytest.raises(InputError, match="entity"):
            parse_entity(bad)


def test_metrics_render_is_prometheus_text():
    from edgeloop_agent.metrics import Metrics

    m = Metrics()
    m.inc("edgeloop_requests_total")
    m.set("edgeloop_model_info", 1, model="m", version='v"1')
    m.observe_latency(0.002)
    text = m.render()
    assert "# TYPE edgeloop_requests_total counter\nedgeloop_requests_total 1" in text
    assert 'edgeloop_model_info{model="m",version="v\\"1"} 1' in text
    assert 'edgeloop_request_seconds_bucket{le="0.0025"} 1' in text
    assert m.percentiles() == (2.0, 2.0)
    assert np.isfinite(m.counter("edgeloop_requests_total"))
