"""Bundle downloads are bounded: declared size, deadline, same-origin
redirects, and a newer desired model stops an older download.

Before: an endless stream filled 150 MiB of the cache and kept a newer desired
model waiting; redirects to any host were followed.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest
from starlette.applications import Starlette
from starlette.responses import FileResponse, RedirectResponse, StreamingResponse
from starlette.routing import Route

from edgeloop_agent.contracts import MODEL_FILE, BundleError
from edgeloop_agent.lifecycle import Lifecycle
from edgeloop_agent.scoring.model_store import ModelStore
from edgeloop_agent.service import ScoringService
from edgeloop_agent.settings import AgentSettings, ModelSettings

from ..conftest import free_port
from ..servers import serve_app
from ..unit.edge_agent.conftest import desired_for
from .test_agent_http import second_bundle


def bundle_app(bundle, other) -> Starlette:
    """``other`` is a second version (same model, another manifest) served slowly."""

    async def manifest(request):
        return FileResponse(bundle / "bundle.json")

    async def other_manifest(request):
        return FileResponse(other / "bundle.json")

    async def endless(request):
        async def zeros():
            while True:
                yield b"\0" * 65536

        return StreamingResponse(zeros())

    async def slow(request):
        async def trickle():
            for _ in range(100_000):
                await asyncio.sleep(0.1)
                yield b"\0" * 1024

        return StreamingResponse(trickle())

    async def model(request):
        return FileResponse(bundle / MODEL_FILE)

    async def elsewhere(request):
        port = request.url.port
        return RedirectResponse(
            f"http://localhost:{port}/plain/{request.path_params['f']}"
        )

    return Starlette(
        routes=[
            Route("/slow-v2/bundle.json", other_manifest),
            Route("/slow-v2/model.onnx", slow),
            Route("/{kind}/bundle.json", manifest),
            Route("/endless/model.onnx", endless),
            Route("/slow/model.onnx", slow),
            Route("/plain/model.onnx", model),
            Route("/moved/{f}", elsewhere),
        ]
    )


@pytest.fixture()
def server(registry_with_champion, tmp_path):
    bundle = tmp_path / "v1"
    shutil.copytree(registry_with_champion["run"].bundle_dir, bundle)
    other = second_bundle(bundle, tmp_path / "v2")
    with serve_app(bundle_app(bundle, other), free_port()) as url:
        yield url, bundle, other


def record(bundle, url):
    return desired_for(bundle).model_copy(update={"bundle_uri": url})


def test_an_endless_model_stops_at_the_declared_size_and_is_discarded(server, tmp_path):
    url, bundle, _ = server
    store = ModelStore(tmp_path / "cache")
    desired = record(bundle, f"{url}/endless")
    with pytest.raises(BundleError, match="more than the .* bytes declared"):
        store.fetch(desired)
    partial = tmp_path / "cache" / f".partial-{desired.bundle_sha256}"
    assert not (partial / MODEL_FILE).exists()
    assert sum(
        p.stat().st_size for p in (tmp_path / "cache").rglob("*") if p.is_file()
    ) < ((bundle / MODEL_FILE).stat().st_size + 2**20)


def test_redirects_to_another_host_are_refused_unless_allowed(server, tmp_path):
    url, bundle, _ = server
    desired = record(bundle, f"{url}/moved")
    with pytest.raises(
        BundleError, match="redirect to another host 'localhost' refused"
    ):
        ModelStore(tmp_path / "strict").fetch(desired)
    allowed = ModelStore(tmp_path / "allowed", redirect_hosts=("localhost",))
    assert (allowed.fetch(desired) / MODEL_FILE).is_file()


def test_an_attempt_past_its_deadline_stops_and_keeps_its_bytes(server, tmp_path):
    url, bundle, _ = server
    # 3 s: long enough for the first bytes to arrive on a loaded machine (at
    # 0.5 s the deadline could pass before model.onnx began), far shorter
    # than the endless trickle
    store = ModelStore(tmp_path / "cache", deadline_s=3.0, max_bundle_bytes=2**30)
    desired = record(bundle, f"{url}/slow")
    with pytest.raises(BundleError, match="did not finish before its deadline"):
        store.fetch(desired)
    partial = tmp_path / "cache" / f".partial-{desired.bundle_sha256}" / MODEL_FILE
    assert partial.stat().st_size > 0  # resumed by the next attempt


async def test_a_newer_desired_model_stops_the_older_download(server, tmp_path):
    url, bundle, other = server
    settings = AgentSettings(
        model=ModelSettings(
            desired_model_path=tmp_path / "desired.json",
            cache_dir=tmp_path / "cache",
            poll_interval_s=0.05,
        )
    )
    store = ModelStore(settings.model.cache_dir, max_bundle_bytes=2**30)
    service = ScoringService(settings)
    life = Lifecycle(settings.model, store, service)
    slow = record(other, f"{url}/slow-v2").model_copy(update={"version": "2"})
    settings.model.desired_model_path.write_text(slow.model_dump_json())
    step = asyncio.create_task(life.step())
    await asyncio.sleep(0.3)  # the slow download is under way
    settings.model.desired_model_path.write_text(desired_for(bundle).model_dump_json())
    await asyncio.wait_for(step, timeout=30)  # returns: the old download stopped
    assert "a newer desired model replaced it" in service.last_model_failure
    await life.step()
    assert service.active is not None and service.active.version == "1"
