import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgeloop_agent.contracts import (
    MANIFEST_FILE,
    MODEL_FILE,
    BundleError,
    BundleManifest,
    DesiredModel,
    bundle_digest,
    verify_bundle,
)


@pytest.fixture()
def bundle_dir(registry_with_champion, tmp_path) -> Path:
    import shutil

    src = registry_with_champion["run"].bundle_dir
    dst = tmp_path / "bundle"
    shutil.copytree(src, dst)
    return dst


def test_built_bundle_verifies_against_its_digest(bundle_dir):
    manifest = verify_bundle(bundle_dir, expected_digest=bundle_digest(bundle_dir))
    assert manifest.model_name == "pump-failure"
    assert len(manifest.reference) == len(manifest.features.input_names())
    assert manifest.lineage.data_hash
    assert manifest.reference_sample.scores


def test_tampered_model_is_refused(bundle_dir):
    (bundle_dir / MODEL_FILE).write_bytes(b"not a model")
    with pytest.raises(BundleError, match="does not match the manifest"):
        verify_bundle(bundle_dir)


def test_wrong_pinned_digest_is_refused(bundle_dir):
    with pytest.raises(BundleError, match="does not match the pinned"):
        verify_bundle(bundle_dir, expected_digest="0" * 64)


def test_missing_and_corrupt_manifest_name_the_file(bundle_dir, tmp_path):
    with pytest.raises(BundleError, match="cannot read bundle manifest"):
        verify_bundle(tmp_path / "nowhere")
    (bundle_dir / MANIFEST_FILE).write_text('{"apiVersion": "edgeloop.io/bundle/v1"}')
    with pytest.raises(BundleError, match="invalid manifest at model_name"):
        verify_bundle(bundle_dir)


def test_manifest_rejects_unknown_fields_and_versions(bundle_dir):
    data = json.loads((bundle_dir / MANIFEST_FILE).read_text())
    with pytest.raises(ValueError, match="Extra inputs"):
        BundleManifest.model_validate({**data, "surprise": 1})
    with pytest.raises(ValueError, match="apiVersion"):
        BundleManifest.model_validate({**data, "apiVersion": "edgeloop.io/bundle/v9"})


def test_desired_model_requires_a_sha256():
    with pytest.raises(ValueError, match="bundle_sha256"):
        DesiredModel(model_name="m", version="1", bundle_uri="/x", bundle_sha256="abc")


def test_contracts_import_stays_light():
    code = (
        "import sys, edgeloop_agent.contracts, edgeloop_agent.features;"
        "heavy = {'kfp','kubernetes','mlflow','evidently','pandas','xgboost','sklearn','onnxruntime'};"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
