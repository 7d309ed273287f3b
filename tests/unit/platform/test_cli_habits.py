"""kubectl habits: global flags after the verb, --version, completion, one-line usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.cli.habits import hoist_global_options

runner = CliRunner()


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        (["models", "list", "-o", "json"], ["-o", "json", "models", "list"]),
        (
            ["models", "list", "--output=json", "-vv"],
            ["--output=json", "-vv", "models", "list"],
        ),
        (
            ["-q", "models", "show", "m@champion", "-ojson"],
            ["-q", "-ojson", "models", "show", "m@champion"],
        ),
        (
            ["retrain", "--reason", "x", "--", "-o", "json"],
            ["retrain", "--reason", "x", "--", "-o", "json"],
        ),
        (
            ["models", "export", "m@1", "--out", "/tmp/b"],
            ["models", "export", "m@1", "--out", "/tmp/b"],
        ),
    ],
)
def test_the_roots_flags_move_in_front_of_the_noun(given, parsed):
    assert hoist_global_options(given) == parsed


def test_output_after_the_verb_is_json(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path))
    after = runner.invoke(app, ["models", "list", "-o", "json"])
    before = runner.invoke(app, ["-o", "json", "models", "list"])
    assert after.exit_code == 0, after.output
    assert json.loads(after.stdout) == json.loads(before.stdout) == []


def test_version_and_completion():
    shown = runner.invoke(app, ["--version"])
    assert shown.exit_code == 0 and shown.stdout == f"edgeloop {version('edgeloop')}\n"
    script = runner.invoke(app, ["--show-completion", "bash"], prog_name="edgeloop")
    assert script.exit_code == 0
    assert "_EDGELOOP_COMPLETE=complete_bash" in script.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["models", "list", "--nope"],
            "error: No such option: --nope (see 'edgeloop models list --help')",
        ),
        (
            ["modelz"],
            "error: No such command 'modelz'. Did you mean 'models'? (see 'edgeloop --help')",
        ),
        (
            ["models", "show"],
            "error: Missing argument 'ref'. (see 'edgeloop models show --help')",
        ),
        (
            ["models", "list", "-o"],
            "error: option '-o' needs a value: table, wide or json (see 'edgeloop --help')",
        ),
        (
            ["-o", "yaml", "models", "list"],
            "error: Invalid value for '--output' / '-o': 'yaml' is not one of 'table', 'wide', 'json'. (see 'edgeloop --help')",
        ),
    ],
)
def test_usage_errors_are_one_line_with_a_hint(args, message):
    result = runner.invoke(app, args, prog_name="edgeloop")
    assert result.exit_code == 2
    assert result.stderr == message + "\n"
    assert result.stdout == ""


def test_the_installed_command_answers_the_same():
    """The console script (not only CliRunner) goes through the same path."""
    bad = subprocess.run(
        [str(Path(sys.executable).parent / "edgeloop"), "models", "list", "--nope"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: No such option: --nope (see 'edgeloop models list --help')"
    ]
