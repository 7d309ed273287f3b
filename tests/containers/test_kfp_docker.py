"""The training pipeline runs in the components image: kfp.local.DockerRunner
against podman's Docker-compatible API (``podman system service``).

The image is built from this repo, pushed to the test registry and pulled by
digest through the Docker API; every step of ``train-edge-model`` runs in a
container of it and the run registers a model in the embedded MLflow store.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeloop.demo.processes import spawn_logged

from ..integration.test_agent_http import wait_for
from ..unit.platform.test_cli import run
from .conftest import ROOT, build_and_push, podman

pytestmark = [pytest.mark.containers, pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def components_image(oci_registry: str) -> Iterator[str]:
    ref = build_and_push("components", oci_registry)
    yield ref
    podman("rmi", ref, check=False)


@pytest.fixture(scope="module")
def docker_api(oci_registry: str, tmp_path_factory) -> Iterator[str]:
    """podman's Docker API on a unix socket; the test registry allowed over HTTP."""
    root = tmp_path_factory.mktemp("podman-api")
    registries = root / "registries.conf"
    registries.write_text(
        f'[[registry]]\nlocation = "{oci_registry}"\ninsecure = true\n'
    )
    socket = root / "podman.sock"
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(ROOT / "hack" / "containers.conf"),
        "CONTAINERS_REGISTRIES_CONF": str(registries),
    }
    log = root / "service.log"
    proc = spawn_logged(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"], log, env=env
    )
    try:
        wait_for(socket.exists, timeout=30, what="podman's API socket")
        yield f"unix://{socket}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_the_pipeline_runs_every_step_in_the_components_image(
    components_image: str,
    docker_api: str,
    fleet_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", docker_api)
    result = run(
        "-o",
        "json",
        "pipeline",
        "run",
        "--data",
        str(fleet_dir),
        "--image",
        components_image,
        "--param",
        "n_estimators=20",
    )
    assert result.exit_code == 0, result.output
    registered = json.loads(result.stdout)
    assert registered["version"] == 1 and len(registered["bundle_sha256"]) == 64
    log = Path(registered["log"]).read_text()
    # kfp's DockerRunner announces the image once per step
    assert log.count(components_image) >= 10, log[-2000:]
    assert "Pulling image" in log  # from the registry, by digest, via the API


def test_an_unpinned_or_missing_image_is_one_line(
    fleet_dir: Path, docker_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", docker_api)
    result = run("pipeline", "run", "--data", str(fleet_dir), "--image", "edgeloop")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "name a tag or, better, a digest" in result.stderr
