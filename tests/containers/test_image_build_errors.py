"""Bad input to the image build: one clear line, exit 1, nothing half-done."""

from __future__ import annotations

import importlib.util
import shutil
import sys

import pytest

from ..conftest import free_port
from .conftest import ROOT

# generous: the first run builds the images (the platform image takes minutes)
pytestmark = [pytest.mark.containers, pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def images(container_tools):
    spec = importlib.util.spec_from_file_location("images", ROOT / "hack" / "images.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["images"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("images", None)


def test_a_missing_wheel_fails_the_build_naming_the_step_and_its_log(
    images, tmp_path, monkeypatch
):
    agent = images.IMAGES["agent"]
    house = images.wheelhouse(agent, images.host_arch(), progress=False)
    broken = tmp_path / "wheels"
    shutil.copytree(house, broken, ignore=shutil.ignore_patterns("numpy-*"))
    monkeypatch.setattr(images, "wheelhouse", lambda *a, **k: broken)
    monkeypatch.setattr(images, "BUILD", tmp_path / "build")
    (tmp_path / "build").mkdir()
    base = images.base_image(images.host_arch(), progress=False)
    with pytest.raises(images.BuildError) as failed:
        images.build(agent, images.host_arch(), base, progress=False)
    message = str(failed.value)
    assert message.startswith("build edgeloop-agent (amd64) failed:")
    assert "\n" not in message
    log = tmp_path / "build" / "build-edgeloop-agent-amd64.log"
    assert str(log) in message
    assert "numpy" in log.read_text()


def test_a_push_to_an_unreachable_registry_is_one_line_and_records_nothing(
    images, capsys
):
    digests = images.BUILD / "digests.json"
    before = digests.read_text() if digests.exists() else None
    closed = f"127.0.0.1:{free_port()}/edgeloop"  # nothing listens there
    assert images.main(["build", "agent", "-q", "--push", closed]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert (
        err[0].startswith("images: push localhost/edgeloop-agent:0.1.0-")
        and closed in err[0]
    )
    assert (digests.read_text() if digests.exists() else None) == before


def test_an_unknown_image_name_is_refused_by_the_command_line(images, capsys):
    with pytest.raises(SystemExit) as exited:
        images.main(["build", "scorer"])
    assert exited.value.code == 2
    assert "invalid choice: 'scorer'" in capsys.readouterr().err
