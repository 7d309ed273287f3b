"""Fixtures for the agent: bundles made by the pipeline code, copied per test."""

import shutil
from pathlib import Path

import pytest

from edgeloop_agent.contracts import DesiredModel, bundle_digest


@pytest.fixture()
def bundle(registry_with_champion, tmp_path) -> Path:
    dst = tmp_path / "src-bundle"
    shutil.copytree(registry_with_champion["run"].bundle_dir, dst)
    return dst


def desired_for(bundle_dir: Path, version: str = "1", **extra) -> DesiredModel:
    return DesiredModel(
        model_name="pump-failure",
        version=version,
        bundle_uri=str(bundle_dir),
        bundle_sha256=bundle_digest(bundle_dir),
        **extra,
    )
