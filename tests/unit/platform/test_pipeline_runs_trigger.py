"""The pipeline's ``trigger`` argument: what started a training run, as MLflow shows it."""

from __future__ import annotations

import pytest

from edgeloop.train.pipeline_runs import parse_params, trigger_label


@pytest.mark.parametrize(
    ("trigger", "reason", "label"),
    [
        (
            {"kind": "drift", "cohort": "desert-02", "evidence": {}},
            "",
            "drift:desert-02",
        ),
        ({"kind": "schedule", "cohort": ""}, "nightly", "schedule"),
        (None, "weekly refresh", "manual: weekly refresh"),
        (None, "", "manual"),
        (None, "x" * 500, "manual: " + "x" * 192),
        (
            {"kind": "manual", "cohort": "", "reason": "weekly refresh"},
            "",
            "manual: weekly refresh",
        ),
        (
            {"kind": "code_change", "cohort": ""},
            "new features",
            "code_change: new features",
        ),
    ],
)
def test_the_label_names_the_decision_else_the_reason(trigger, reason, label):
    assert trigger_label(trigger, reason) == label


def test_trigger_is_a_pipeline_parameter_a_user_can_set():
    assert parse_params(["trigger=code_change"]) == {"trigger": "code_change"}
