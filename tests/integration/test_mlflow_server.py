"""The registry over HTTP: a real `mlflow server` on 127.0.0.1, started by the test."""

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.demo.processes import spawn_logged
from edgeloop_components import tasks

from ..conftest import free_port

pytestmark = [pytest.mark.mlflow_server, pytest.mark.slow]
runner = CliRunner()


@contextmanager
def running_mlflow_server(
    root: Path, artifacts: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``mlflow server`` with the artifact proxy on 127.0.0.1; yields its URL."""
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    proc = spawn_logged(
        [
            str(mlflow),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'srv.db'}",
            "--serve-artifacts",
            "--artifacts-destination",
            artifacts,
        ],
        root / "server.log",
        "wb",
        env={
            **os.environ,
            **(env or {}),
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        },
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, (root / "server.log").read_text()[-2000:]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail(
                "mlflow server did not become healthy: "
                + (root / "server.log").read_text()[-2000:]
            )
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    with running_mlflow_server(root, str(root / "artifacts")) as url:
        yield url


def test_register_show_export_over_http(
    mlflow_server, registry_with_champion, tmp_path, monkeypatch
):
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(registry_with_champion["run"].bundle_dir, bundle)
    registered = tasks.register_bundle(
        bundle, mlflow_server, True, True, {"source": "test"}
    )
    assert registered["version"] == 1 and registered["promoted"]

    monkeypatch.setenv("EDGELOOP_REGISTRY__TRACKING_URI", mlflow_server)
    shown = runner.invoke(
        app, ["-o", "json", "models", "show", "pump-failure@champion"]
    )
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["version"] == 1
    exported = runner.invoke(
        app,
        [
            "-o",
            "json",
            "models",
            "export",
            "pump-failure:1",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout)["bundle_sha256"] == registered["bundle_sha256"]
    promoted = runner.invoke(
        app, ["-o", "json", "models", "promote", "pump-failure:1", "--alias", "fleet-a"]
    )
    assert json.loads(promoted.stdout)["previous"] is None


def test_unreachable_server_is_one_line_error(monkeypatch):
    monkeypatch.setenv(
        "EDGELOOP_REGISTRY__TRACKING_URI", f"http://127.0.0.1:{free_port()}"
    )
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: registry http://127.0.0.1:")
    assert "unreachable" in result.stderr and "Traceback" not in result.output
