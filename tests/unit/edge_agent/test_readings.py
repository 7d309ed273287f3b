import math

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
        # json.loads gives integers too large for a float
        ({"a": 10**400, "b": 2}, "values.a: must be finite"),
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
    m.request("predict", 200, 0.002)
    m.request("predict", 422)
    m.serving("m", 'v"1', "abc")
    m.serving("m", "v2", "def")  # the info metric names only the model now served
    for _ in range(1_234_567):
        m.inc("edgeloop_alarms_total", version="v2")
    text = m.render().decode()
    assert "# HELP edgeloop_requests_total Scoring requests" in text
    assert "# TYPE edgeloop_requests_total counter" in text
    assert 'edgeloop_requests_total{code="200",endpoint="predict"} 1.0' in text
    assert 'edgeloop_requests_total{code="422",endpoint="predict"} 1.0' in text
    assert 'edgeloop_alarms_total{version="v2"} 1.234567e+06' in text  # exact
    assert 'v\\"1' not in text
    assert 'edgeloop_model_info{digest="def",model="m",version="v2"} 1.0' in text
    assert (
        'edgeloop_request_duration_seconds_bucket{endpoint="predict",le="0.0025"} 1.0'
        in text
    )
    assert "process_resident_memory_bytes " in text
    assert m.percentiles() == (2.0, 2.0)
    assert (m.requests_ok, m.requests_failed) == (1, 1)
    assert m.value("edgeloop_alarms_total", version="v2") == 1_234_567
    assert b"edgeloop_alarms_total{" not in Metrics().render()  # nothing shared
