"""What ``edgeloop intake serve`` sets up in its process before uvicorn runs.

The intake's event loop waits for the GIL behind its store threads; the switch
interval bounds that wait (settings: ``intake.switch_interval_ms``). It is a
process-wide knob, so it belongs to the serving command, not to ``create_app``
(tests and embedders keep their own).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from edgeloop.cli import app


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Run ``intake serve`` up to uvicorn; what it was asked, and the interval then."""
    import uvicorn

    seen: dict[str, Any] = {}

    def run(asgi: Any, **options: Any) -> None:
        seen["interval"] = sys.getswitchinterval()
        seen.update(options)

    before = sys.getswitchinterval()
    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path))
    yield seen
    sys.setswitchinterval(before)


def test_serve_sets_the_switch_interval_from_settings(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGELOOP_INTAKE__SWITCH_INTERVAL_MS", "2.5")
    done = CliRunner().invoke(app, ["intake", "serve", "--port", "8123"])
    assert done.exit_code == 0, done.output
    assert served["interval"] == pytest.approx(0.0025)
    assert served["port"] == 8123


def test_serve_defaults_to_a_one_millisecond_switch_interval(
    served: dict[str, Any],
) -> None:
    done = CliRunner().invoke(app, ["intake", "serve"])
    assert done.exit_code == 0, done.output
    assert served["interval"] == pytest.approx(0.001)


def test_a_switch_interval_out_of_range_is_one_line_and_nothing_served(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGELOOP_INTAKE__SWITCH_INTERVAL_MS", "0")
    done = CliRunner().invoke(app, ["intake", "serve"])
    assert done.exit_code != 0
    assert done.output.strip().splitlines() == [
        "error: setting EDGELOOP_INTAKE__SWITCH_INTERVAL_MS:"
        " Input should be greater than 0 (got '0')"
    ]
    assert "interval" not in served
