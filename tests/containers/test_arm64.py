"""arm64 (most edge gateways): the agent image built for arm64, run under qemu,
scores the same bundle with the same scores as amd64; both under one manifest list.

Emulation makes this tier slow (the arm64 base and build run under qemu), so it
is opt-in: ``make test-containers-full`` (``pytest --with-arm64``), not ``make test``.
It needs Debian's qemu-user-static and binfmt_misc, which the target sets up.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from .conftest import build_and_push, podman

pytestmark = [
    pytest.mark.containers,
    pytest.mark.arm64,
    pytest.mark.slow,
    pytest.mark.timeout(3600),
]

SCORE = (
    "import json, platform, sys, numpy as np;"
    "from pathlib import Path;"
    "from edgeloop_agent.scoring.onnx import OnnxScorer;"
    "s = OnnxScorer(); s.load(Path('/bundle/model.onnx'));"
    "x = np.asarray(json.load(open('/rows.json')), dtype=np.float32);"
    "print(json.dumps({'machine': platform.machine(), 'scores': s.predict(x).tolist()}))"
)


def _scores(ref: str, arch: str, bundle: Path, rows: Path) -> dict:
    out = podman(
        "run",
        "--rm",
        "--arch",
        arch,
        "--tls-verify=false",
        "--read-only",
        "--network",
        "host",
        "-v",
        f"{bundle}:/bundle:ro",
        "-v",
        f"{rows}:/rows.json:ro",
        "--entrypoint",
        "python3",
        ref,
        "-c",
        SCORE,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_arm64_agent_scores_like_amd64_and_both_share_one_manifest_list(
    oci_registry, registry_with_champion, tmp_path
):
    if shutil.which("qemu-aarch64-static") is None:
        pytest.fail(
            "qemu-user-static is missing: `make test-containers-full` installs it"
        )
    amd64 = build_and_push("agent", oci_registry, "amd64")
    arm64 = build_and_push("agent", oci_registry, "arm64")
    bundle = registry_with_champion["run"].bundle_dir
    width = json.loads((bundle / "bundle.json").read_text())["features"]
    rng = np.random.default_rng(7)
    n_inputs = len(_inputs(width))
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps(rng.normal(size=(64, n_inputs)).tolist()))
    native = _scores(amd64, "amd64", bundle, rows)
    emulated = _scores(arm64, "arm64", bundle, rows)
    assert native["machine"] == "x86_64" and emulated["machine"] == "aarch64"
    delta = np.max(np.abs(np.array(native["scores"]) - np.array(emulated["scores"])))
    assert delta <= 1e-6, delta

    # one multi-arch reference for both
    index = f"{oci_registry}/edgeloop/edgeloop-agent:0.1.0"
    podman("manifest", "rm", "edgeloop-agent-multiarch", check=False)
    podman("manifest", "create", "edgeloop-agent-multiarch")
    for ref in (amd64, arm64):
        podman(
            "manifest",
            "add",
            "--tls-verify=false",
            "edgeloop-agent-multiarch",
            f"docker://{ref}",
        )
    podman(
        "manifest",
        "push",
        "--tls-verify=false",
        "--all",
        "edgeloop-agent-multiarch",
        f"docker://{index}",
    )
    podman("manifest", "rm", "edgeloop-agent-multiarch", check=False)
    repo, tag = index.removeprefix(f"{oci_registry}/").rsplit(":", 1)
    listed = httpx.get(
        f"http://{oci_registry}/v2/{repo}/manifests/{tag}",
        headers={
            "Accept": "application/vnd.oci.image.index.v1+json, "
            "application/vnd.docker.distribution.manifest.list.v2+json"
        },
    ).json()
    assert sorted(m["platform"]["architecture"] for m in listed["manifests"]) == [
        "amd64",
        "arm64",
    ]


def _inputs(features: dict) -> list[str]:
    from edgeloop_agent.contracts import FeatureSpec

    return FeatureSpec.model_validate(features).input_names()
