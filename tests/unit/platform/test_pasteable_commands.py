"""Every command the demo prints works pasted into a fresh shell (no venv activated, any directory)."""

from __future__ import annotations

import json
import shlex
import subprocess

from rich.console import Console
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.demo.state import LoopResult
from edgeloop.demo.summary import _look_closer


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
    console = Console(record=True, width=400)
    _look_closer(console, LoopResult(home=str(home)))
    lines = [
        line.strip().split("   #")[0]
        for line in console.export_text().splitlines()
        if line.startswith("  ")
    ]
    export, lineage, listings, mlflow_ui, evidently_ui = lines
    assert export == f"export EDGELOOP_HOME={shlex.quote(str(home))}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _fresh_shell(f"{export}; {listings}", elsewhere)
    assert done.returncode == 0, done.stderr
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
