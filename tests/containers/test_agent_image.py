"""The agent image: built from the repo, pulled from a real registry, hardened, edge-only."""

from __future__ import annotations

import json

import pytest

from .conftest import podman

# generous: the first run builds the images (the platform image takes minutes)
pytestmark = [pytest.mark.containers, pytest.mark.slow, pytest.mark.timeout(1200)]

FORBIDDEN = ("kfp", "kubernetes", "mlflow", "evidently", "pandas", "xgboost", "sklearn")


def _pulled(ref: str) -> dict:
    podman("pull", "--tls-verify=false", "-q", ref)
    return json.loads(podman("image", "inspect", ref).stdout)[0]


def test_the_image_is_pulled_by_digest_and_carries_its_labels(agent_image):
    info = _pulled(agent_image)
    labels = info["Labels"]
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert len(labels["org.opencontainers.image.revision"]) == 40
    assert labels["org.opencontainers.image.source"].startswith("https://")
    config = info["Config"]
    assert config["User"] == "10001"
    assert config["Entrypoint"] == ["edgeloop-agent"] and config["Cmd"] == ["serve"]


def test_only_the_edge_extra_is_inside_and_the_agent_imports_nothing_more(agent_image):
    _pulled(agent_image)
    probe = (
        "import sys, importlib.util, edgeloop_agent.api.app, uvloop, httptools;"
        f"bad = sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r}));"
        f"absent = [m for m in {FORBIDDEN!r} if importlib.util.find_spec(m) is None];"
        "print(bad, len(absent))"
    )
    out = podman(
        "run",
        "--rm",
        "--read-only",
        "--network",
        "host",
        "--entrypoint",
        "python3",
        agent_image,
        "-c",
        probe,
    ).stdout.strip()
    # nothing forbidden imported, and none of it even installed in the image
    assert out == f"[] {len(FORBIDDEN)}"
