import asyncio
import json
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from edgeloop_agent.contracts import (
    MANIFEST_FILE,
    MODEL_FILE,
    BundleError,
    bundle_digest,
)
from edgeloop_agent.lifecycle import Lifecycle
from edgeloop_agent.scoring.model_store import ModelStore, read_desired
from edgeloop_agent.service import ScoringService
from edgeloop_agent.settings import AgentSettings, ModelSettings

from ...conftest import free_port
from ...servers import file_server
from .conftest import desired_for


def retamper(bundle, change):
    data = json.loads((bundle / MANIFEST_FILE).read_text())
    change(data)
    (bundle / MANIFEST_FILE).write_text(json.dumps(data))


def test_fetch_local_verifies_caches_and_loads(bundle, tmp_path):
    store = ModelStore(tmp_path / "cache")
    desired = desired_for(bundle)
    path = store.fetch(desired)
    assert path == tmp_path / "cache" / desired.bundle_sha256
    assert store.fetch(desired) == path
    model = store.load(path, desired)
    assert model.scorer.n_inputs == len(model.manifest.features.input_names())


def test_digest_mismatch_never_reaches_the_cache(bundle, tmp_path):
    store = ModelStore(tmp_path / "cache")
    desired = desired_for(bundle).model_copy(update={"bundle_sha256": "a" * 64})
    with pytest.raises(BundleError, match="does not match the pinned"):
        store.fetch(desired)
    assert not (tmp_path / "cache" / ("a" * 64)).exists()


def test_corrupt_model_file_is_refused(bundle, tmp_path):
    (bundle / MODEL_FILE).write_bytes(b"\x00garbage")
    with pytest.raises(BundleError, match="does not match the manifest"):
        ModelStore(tmp_path / "cache").fetch(desired_for(bundle))


def test_unreadable_onnx_with_matching_digest_fails_to_load(bundle, tmp_path):
    import hashlib

    (bundle / MODEL_FILE).write_bytes(b"not onnx at all")
    retamper(
        bundle,
        lambda d: d.update(model_sha256=hashlib.sha256(b"not onnx at all").hexdigest()),
    )
    store = ModelStore(tmp_path / "cache")
    desired = desired_for(bundle)
    with pytest.raises(BundleError, match="not a loadable ONNX model"):
        store.load(store.fetch(desired), desired)


def test_smoke_test_catches_a_model_that_scores_differently(bundle, tmp_path):
    retamper(
        bundle,
        lambda d: d["reference_sample"].update(
            scores=[0.5] * len(d["reference_sample"]["scores"])
        ),
    )
    store = ModelStore(tmp_path / "cache")
    desired = desired_for(bundle)
    with pytest.raises(BundleError, match="smoke test failed"):
        store.load(store.fetch(desired), desired)


def test_unwritable_cache_is_a_bundle_error(bundle, tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory should be")
    with pytest.raises(BundleError, match="cannot store bundle"):
        ModelStore(blocker).fetch(desired_for(bundle))


def test_http_fetch_resumes_a_partial_download(bundle, tmp_path):
    desired = desired_for(bundle)
    partial = tmp_path / "cache" / f".partial-{desired.bundle_sha256}"
    partial.mkdir(parents=True)
    data = (bundle / MODEL_FILE).read_bytes()
    (partial / MODEL_FILE).write_bytes(data[: len(data) // 2])
    with file_server(bundle.parent, free_port()) as (url, ranges):
        remote = desired.model_copy(update={"bundle_uri": f"{url}/{bundle.name}"})
        path = ModelStore(tmp_path / "cache").fetch(remote)
    assert (path / MODEL_FILE).read_bytes() == data
    assert f"bytes={len(data) // 2}-" in ranges


def test_http_404_is_a_bundle_error(bundle, tmp_path):
    with file_server(tmp_path, free_port()) as (url, _):
        remote = desired_for(bundle).model_copy(update={"bundle_uri": f"{url}/missing"})
        with pytest.raises(BundleError, match="HTTP 404"):
            ModelStore(tmp_path / "cache").fetch(remote)


def test_restore_after_restart_needs_no_source(bundle, tmp_path):
    store = ModelStore(tmp_path / "cache")
    desired = desired_for(bundle)
    store.remember(store.load(store.fetch(desired), desired))
    shutil.rmtree(bundle)
    restored = ModelStore(tmp_path / "cache").restore()
    assert restored is not None and restored.digest == desired.bundle_sha256


def test_desired_file_errors_are_readable(tmp_path):
    path = tmp_path / "desired.json"
    path.write_text("{not json")
    with pytest.raises(BundleError, match="not JSON"):
        read_desired(path)
    path.write_text('{"model_name": "m"}')
    with pytest.raises(BundleError, match="invalid desired-model record"):
        read_desired(path)


class Clock:
    def __init__(self):
        self.now = datetime(2026, 3, 1, tzinfo=UTC).timestamp()

    def __call__(self):
        return self.now


def lifecycle(tmp_path, clock=None):
    settings = AgentSettings(
        model=ModelSettings(
            desired_model_path=tmp_path / "desired.json",
            cache_dir=tmp_path / "cache",
            retry_delays_s=(30.0,),
        )
    )
    service = ScoringService(settings, clock=clock or Clock())
    return Lifecycle(
        settings.model, ModelStore(settings.model.cache_dir), service, clock or Clock()
    ), service


def write_desired(tmp_path, desired):
    (tmp_path / "desired.json").write_text(desired.model_dump_json())


def test_lifecycle_activates_then_keeps_serving_through_a_bad_update(bundle, tmp_path):
    life, service = lifecycle(tmp_path)
    write_desired(tmp_path, desired_for(bundle, version="1"))
    asyncio.run(life.step())
    assert service.active.version == "1"
    bad = tmp_path / "bad"
    shutil.copytree(bundle, bad)
    (bad / MODEL_FILE).write_bytes(b"broken")
    retamper(bad, lambda d: d["lineage"].update(pipeline_run_id="another-run"))
    write_desired(tmp_path, desired_for(bad, version="2"))
    asyncio.run(life.step())
    assert service.active.version == "1"
    assert (
        "model.onnx" in service.last_model_failure and "2" in service.last_model_failure
    )
    assert service.heartbeat().last_model_failure == service.last_model_failure


def test_lifecycle_prestages_and_activates_at_the_given_time(bundle, tmp_path):
    clock = Clock()
    life, service = lifecycle(tmp_path, clock)
    when = datetime.fromtimestamp(clock.now, tz=UTC) + timedelta(minutes=10)
    write_desired(tmp_path, desired_for(bundle, version="1", activate_at=when))
    asyncio.run(life.step())
    assert service.active is None and life.staged is not None
    shutil.rmtree(bundle)  # staged already: the source may go away
    clock.now += 601
    asyncio.run(life.step())
    assert service.active.version == "1"


def test_lifecycle_falls_back_to_last_known_good_when_nothing_serves(bundle, tmp_path):
    life, service = lifecycle(tmp_path)
    good = desired_for(bundle, version="1")
    broken = good.model_copy(
        update={"version": "2", "bundle_sha256": "b" * 64, "last_known_good": good}
    )
    write_desired(tmp_path, broken)
    asyncio.run(life.step())
    assert service.active.version == "1"
    assert "2" in service.last_model_failure


def test_bundle_digest_of_fixture_is_stable(bundle):
    assert bundle_digest(bundle) == bundle_digest(bundle)


def test_standalone_bundle_is_served_under_its_exported_record(bundle, tmp_path):
    (bundle / "desired-model.json").write_text(
        desired_for(bundle, version="7").model_dump_json()
    )
    model = ModelStore(tmp_path / "cache").standalone(str(bundle))
    assert (model.name, model.version) == ("pump-failure", "7")
    (bundle / "desired-model.json").write_text(
        desired_for(bundle, version="7")
        .model_copy(update={"bundle_sha256": "c" * 64})
        .model_dump_json()
    )
    with pytest.raises(BundleError, match="pins bundle cccccccccccc"):
        ModelStore(tmp_path / "cache2").standalone(str(bundle))
    (bundle / "desired-model.json").unlink()
    assert (
        ModelStore(tmp_path / "cache3").standalone(str(bundle)).version
        == bundle_digest(bundle)[:12]
    )


def test_a_node_prefers_its_own_record_from_the_group_configmap(bundle, tmp_path):
    """A percentage wave splits a group: this node's key wins over the group's."""
    settings = AgentSettings(
        model=ModelSettings(
            desired_model_path=tmp_path / "desired-model.json",
            cache_dir=tmp_path / "cache",
        )
    )
    service = ScoringService(settings, clock=Clock())
    store = ModelStore(settings.model.cache_dir)
    life = Lifecycle(settings.model, store, service, Clock(), node="gw-7")
    (tmp_path / "desired-model.json").write_text(
        desired_for(bundle, version="1").model_dump_json()
    )
    (tmp_path / "desired-model.gw-3.json").write_text(
        desired_for(bundle, version="2").model_dump_json()
    )
    asyncio.run(life.step())
    assert service.active.version == "1"  # another node's key is not ours
    assert life.desired_path().name == "desired-model.json"
    (tmp_path / "desired-model.gw-7.json").write_text(
        desired_for(bundle, version="2").model_dump_json()
    )
    asyncio.run(life.step())
    assert life.desired_path().name == "desired-model.gw-7.json"
    assert life.desired is not None and life.desired.version == "2"
