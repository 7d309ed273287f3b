"""The containers tier: images built from this repo, a real OCI registry, pods.

Everything runs on this machine with Debian's OCI tools (buildah, podman with
runc, docker-registry, mmdebstrap); ``make test`` installs them as root. The
registry and every server the pods talk to listen on 127.0.0.1 only.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeloop.demo.processes import spawn_logged, wait_http

from ..conftest import free_port
from ..integration.test_agent_http import second_bundle

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("podman", "buildah", "mmdebstrap", "docker-registry")


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run podman with the project's containers.conf."""
    done = subprocess.run(["podman", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {done.stderr.strip()}")
    return done


@pytest.fixture(scope="session")
def container_tools() -> None:
    """The OCI tools, configured for these machines (see hack/containers.conf)."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(
            f"container tools missing: {', '.join(missing)}; `make test` installs "
            "them as root (apt-get install buildah podman runc mmdebstrap docker-registry)"
        )
    os.environ["CONTAINERS_CONF"] = str(ROOT / "hack" / "containers.conf")


@pytest.fixture(scope="session")
def oci_registry(
    container_tools: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A CNCF distribution registry (Debian's docker-registry) on 127.0.0.1."""
    root = tmp_path_factory.mktemp("oci-registry")
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = root / "registry.log"
    proc = spawn_logged(["docker-registry", "serve", str(config)], log)
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/", proc, "docker-registry", log, 30)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        # the copies pulled from this (now gone) registry
        # (by name: an image also tagged by the build keeps that tag)
        pulled = podman(
            "images", "--format", "{{.Repository}}@{{.Digest}}", check=False
        ).stdout.split()
        for ref in pulled:
            if ref.startswith(f"127.0.0.1:{port}/"):
                podman("rmi", ref, check=False)


def build_and_push(image: str, registry: str, arch: str = "") -> str:
    """``hack/images.py build IMAGE --push``: the pushed reference, by digest."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "hack" / "images.py"),
            "build",
            image,
            "-q",
            *(["--arch", arch] if arch else []),
            "--push",
            f"{registry}/edgeloop",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    ref = done.stdout.strip().splitlines()[-1]
    assert "@sha256:" in ref, ref
    return ref


@pytest.fixture(scope="session")
def agent_image(oci_registry: str) -> str:
    """The agent image built from this repo and pushed; referenced by digest."""
    return build_and_push("agent", oci_registry)


@pytest.fixture(scope="session")
def bundle_server(
    registry_with_champion, tmp_path_factory
) -> Iterator[tuple[str, Path]]:
    """v1 and v2 bundles over HTTP on 127.0.0.1 (what MLflow's artifact proxy serves)."""
    root = tmp_path_factory.mktemp("bundles")
    shutil.copytree(registry_with_champion["run"].bundle_dir, root / "v1")
    second_bundle(root / "v1", root / "v2")
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(root)
    )
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
