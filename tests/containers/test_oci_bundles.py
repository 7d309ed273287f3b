"""Model bundles as OCI artifacts: pushed by the CLI, pulled by the agent.

A real CNCF distribution registry on 127.0.0.1; the bundle comes from the
session's MLflow registry; the agent pulls it through the same code path it
uses in a pod (``oci://`` in its desired-model record).
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from edgeloop.provenance.oci_push import _put_blob
from edgeloop_agent.contracts import BundleError, DesiredModel
from edgeloop_agent.contracts.oci_bundle import (
    ARTIFACT_TYPE,
    MANIFEST_MEDIA_TYPE,
    OciReference,
    sha256_digest,
)
from edgeloop_agent.scoring.model_store import ModelStore

from ..conftest import free_port
from ..integration.test_agent_http import running_agent, settings_for, wait_for
from ..metrics_text import metric
from ..unit.platform.test_cli import assert_one_line_error, registry_env, run

pytestmark = pytest.mark.containers
__all__ = ["registry_env"]  # the fixture, used by name


@pytest.fixture()
def pushed(registry_env, oci_registry) -> dict:
    """pump-failure@champion pushed with ``edgeloop models export --to``."""
    target = f"oci://{oci_registry}/models/pump-failure:champion"
    result = run(
        "-o", "json", "models", "export", "pump-failure@champion", "--to", target
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_export_pushes_an_artifact_the_registry_serves_by_digest(
    pushed, registry_env, oci_registry
):
    ref = OciReference.parse(pushed["pushed"])
    assert ref.registry == oci_registry and ref.repository == "models/pump-failure"
    assert ref.digest.startswith("sha256:") and not ref.tag
    answer = httpx.get(
        f"http://{oci_registry}/v2/models/pump-failure/manifests/champion",
        headers={"Accept": MANIFEST_MEDIA_TYPE},
    )
    assert answer.status_code == 200
    assert sha256_digest(answer.content) == ref.digest  # the tag names that digest
    manifest = answer.json()
    assert manifest["artifactType"] == ARTIFACT_TYPE
    titles = [
        layer["annotations"]["org.opencontainers.image.title"]
        for layer in manifest["layers"]
    ]
    assert titles == ["bundle.json", "model.onnx"]
    bundle_layer = manifest["layers"][0]["digest"]
    assert bundle_layer == f"sha256:{registry_env['registered']['bundle_sha256']}"
    assert manifest["annotations"]["io.edgeloop.version"] == "1"
    record = DesiredModel.model_validate(pushed["desired_model"])
    assert record.bundle_uri == pushed["pushed"]
    assert record.bundle_sha256 == registry_env["registered"]["bundle_sha256"]


def test_agent_pulls_the_artifact_and_scores_like_the_original(
    pushed, registry_env, tmp_path
):
    record = DesiredModel.model_validate(pushed["desired_model"])
    store = ModelStore(tmp_path / "cache")
    model = store.load(store.fetch(record), record)
    original = ModelStore(tmp_path / "plain").standalone(
        str(registry_env["run"].bundle_dir)
    )
    x = np.asarray(original.manifest.reference_sample.inputs, dtype=np.float32)
    np.testing.assert_array_equal(model.scorer.predict(x), original.scorer.predict(x))
    assert model.version == "1" and model.digest == record.bundle_sha256


def test_a_site_mirror_replaces_the_registry_of_the_reference(
    pushed, oci_registry, tmp_path
):
    record = DesiredModel.model_validate(pushed["desired_model"])
    elsewhere = record.bundle_uri.replace(oci_registry, "registry.invalid:5000")
    remote = record.model_copy(update={"bundle_uri": elsewhere})
    with pytest.raises(BundleError, match="registry unreachable"):
        ModelStore(tmp_path / "direct", timeout_s=2).fetch(remote)
    store = ModelStore(tmp_path / "cache", registry_mirror=oci_registry)
    assert (store.fetch(remote) / "model.onnx").is_file()


def test_wrong_digests_are_refused_and_nothing_is_cached(pushed, tmp_path):
    record = DesiredModel.model_validate(pushed["desired_model"])
    store = ModelStore(tmp_path / "cache")
    other = "sha256:" + "0" * 64
    unknown = record.model_copy(
        update={"bundle_uri": record.bundle_uri.split("@")[0] + "@" + other}
    )
    with pytest.raises(BundleError, match="no such manifest"):
        store.fetch(unknown)
    wrong_pin = record.model_copy(update={"bundle_sha256": "f" * 64})
    with pytest.raises(BundleError, match="does not match the pinned"):
        store.fetch(wrong_pin)
    assert not (tmp_path / "cache" / record.bundle_sha256).exists()
    assert not (tmp_path / "cache" / ("f" * 64)).exists()


def test_an_artifact_that_is_not_a_bundle_is_refused(oci_registry, tmp_path):
    """A container image's manifest (an image config, one tar layer) under a tag."""
    base = f"http://{oci_registry}/v2/images/not-a-bundle"
    with httpx.Client() as client:
        config = b'{"architecture":"amd64","os":"linux"}'
        config_digest = _put_blob(client, base, config, "application/octet-stream")
        layer_digest = _put_blob(client, base, b"not a tar", "application/octet-stream")
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_MEDIA_TYPE,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest,
                        "size": 9,
                    }
                ],
            }
        ).encode()
        put = client.put(
            f"{base}/manifests/v1",
            content=manifest,
            headers={"Content-Type": MANIFEST_MEDIA_TYPE},
        )
        assert put.status_code == 201, put.text
    record = DesiredModel(
        model_name="pump-failure",
        version="1",
        bundle_uri=f"oci://{oci_registry}/images/not-a-bundle@{sha256_digest(manifest)}",
        bundle_sha256="a" * 64,
    )
    with pytest.raises(BundleError, match="not an edgeloop bundle"):
        ModelStore(tmp_path / "cache").fetch(record)


def test_a_corrupt_partial_blob_is_discarded_and_the_next_pull_succeeds(
    pushed, tmp_path
):
    """The pull resumes a partial blob with Range; if the resumed bytes were
    wrong, the blob digest catches it, the partial is dropped, a retry heals."""
    record = DesiredModel.model_validate(pushed["desired_model"])
    partial = tmp_path / "cache" / f".partial-{record.bundle_sha256}"
    partial.mkdir(parents=True)
    (partial / "model.onnx").write_bytes(b"\0" * 100)
    store = ModelStore(tmp_path / "cache")
    with pytest.raises(BundleError, match="model.onnx blob digest"):
        store.fetch(record)
    assert not (partial / "model.onnx").exists()
    assert (store.fetch(record) / "model.onnx").is_file()


def test_agent_serves_from_oci_and_keeps_its_model_on_a_bad_reference(
    pushed, oci_registry, tmp_path
):
    record = DesiredModel.model_validate(pushed["desired_model"])
    settings = settings_for(tmp_path)
    with running_agent(settings) as url:
        settings.model.desired_model_path.write_text(record.model_dump_json())
        wait_for(
            lambda: httpx.get(f"{url}/v2/health/ready").status_code == 200,
            what="model ready from the registry",
        )
        bad = record.model_copy(
            update={
                "version": "2",
                "bundle_sha256": "b" * 64,
                "bundle_uri": f"oci://{oci_registry}/models/pump-failure@sha256:{'1' * 64}",
            }
        )
        settings.model.desired_model_path.write_text(bad.model_dump_json())
        wait_for(
            lambda: metric(
                httpx.get(f"{url}/metrics").text, "edgeloop_model_failures_total"
            ),
            what="the bad reference counted",
        )
        meta = httpx.get(f"{url}/v2/models/pump-failure").json()
        assert meta["versions"] == ["1"]
        assert httpx.get(f"{url}/v2/health/ready").status_code == 200


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("--to", "oci://127.0.0.1:1/models/x@sha256:" + "0" * 64), "push to a tag"),
        (("--to", "oci://127.0.0.1:1/Models/x:v1"), "invalid repository"),
        (("--to", "s3://bucket/x"), "not an oci:// reference"),
        ((), "give exactly one of --out DIR or --to"),
    ],
)
def test_bad_push_targets_are_one_line_errors(registry_env, args, fragment):
    result = run("models", "export", "pump-failure@champion", *args)
    assert_one_line_error(result, fragment)


def test_push_to_an_unreachable_registry_is_one_line(registry_env):
    target = f"oci://127.0.0.1:{free_port()}/models/pump-failure:v1"
    result = run("models", "export", "pump-failure@champion", "--to", target)
    assert_one_line_error(result, "registry unreachable")
