"""Every command the demo prints works pasted into a fresh shell (no venv activated, any directory)."""

from __future__ import annotations

import json
import shlex
import subprocess
from datetime import UTC, datetime

from rich.console import Console
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.demo.run import _keep_rollout_file
from edgeloop.demo.scenario import SITES, edge_rollout
from edgeloop.demo.state import LoopResult
from edgeloop.demo.summary import _look_closer
from edgeloop.rollout.controller import StatusStore
from edgeloop.rollout.spec import Decision


def _fresh_shell(line: str, cwd) -> subprocess.CompletedProcess[str]:
    """``line`` in bash with an empty environment (PATH without the venv), elsewhere."""
    return subprocess.run(
        ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={cwd}", "bash", "-c", line],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_demos_look_closer_commands_run_in_a_fresh_shell(tmp_path):
    home = tmp_path / "demo-loop"
    home.mkdir()
    # the demo leaves its EdgeRollout in its home, with a decision in the status
    spec = edge_rollout({site: [f"{site}-n1"] for site in SITES})
    _keep_rollout_file(home, spec)
    done = spec.model_copy(deep=True)
    done.status.history.append(
        Decision(
            at=datetime.now(UTC), wave="canary", action="advance", reason="gates ok"
        )
    )
    StatusStore(home / "rollouts").save(done)
    console = Console(record=True, width=400)
    _look_closer(console, LoopResult(home=str(home)))
    lines = [
        line.strip().split("   #")[0]
        for line in console.export_text().splitlines()
        if line.startswith("  ")
    ]
    export, lineage, listings, history, mlflow_ui, evidently_ui = lines
    assert export == f"export EDGELOOP_HOME={shlex.quote(str(home))}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _fresh_shell(f"{export}; {listings}", elsewhere)
    assert done.returncode == 0, done.stderr
    decisions = _fresh_shell(f"{export}; {history}", elsewhere)
    assert decisions.returncode == 0, decisions.stderr
    assert "gates ok" in decisions.stdout
    for ui in (mlflow_ui, evidently_ui):
        executable = shlex.split(ui)[0]
        assert executable.startswith("/"), ui
        helped = _fresh_shell(f"{ui} --help", elsewhere)
        assert helped.returncode == 0, (ui, helped.stderr[-500:])
    assert shlex.split(lineage)[0].startswith("/")


def test_monitor_ui_prints_a_command_that_runs_anywhere(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path / "home"))
    shown = CliRunner().invoke(app, ["-o", "json", "monitor", "ui"])
    assert shown.exit_code == 0, shown.output
    command = json.loads(shown.stdout)["command"]
    assert shlex.split(command)[0].startswith("/")
    helped = _fresh_shell(f"{command} --help", tmp_path)
    assert helped.returncode == 0, helped.stderr[-500:]
