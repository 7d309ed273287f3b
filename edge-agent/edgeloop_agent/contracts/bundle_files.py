"""Reading and verifying a model bundle directory.

A bundle is ``bundle.json`` (a :class:`~edgeloop_agent.contracts.BundleManifest`)
plus ``model.onnx`` (none in a monitor-only bundle). The bundle digest is the sha256 of ``bundle.json``; the
manifest pins ``model.onnx`` by its own sha256, so one digest covers both.

Stdlib + pydantic only: the agent, the pipeline and the platform all verify
bundles with it, so it lives with the contract.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import ValidationError

from edgeloop_agent.contracts.errors import BundleError
from edgeloop_agent.contracts.models import MANIFEST_FILE, MODEL_FILE, BundleManifest


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so large models need no big buffer."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def bundle_digest(bundle_dir: Path) -> str:
    """The bundle's digest: sha256 of its manifest file."""
    return file_sha256(Path(bundle_dir) / MANIFEST_FILE)


def read_manifest(bundle_dir: Path) -> BundleManifest:
    """Parse ``bundle.json`` without checking ``model.onnx``.

    Raises:
        BundleError: the file is missing or not a valid manifest.
    """
    path = Path(bundle_dir) / MANIFEST_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BundleError(
            f"{path}: cannot read bundle manifest ({exc.strerror})"
        ) from exc
    try:
        return BundleManifest.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise BundleError(
            f"{path}: invalid manifest at {where}: {first['msg']}"
        ) from exc


def verify_bundle(
    bundle_dir: Path, expected_digest: str | None = None
) -> BundleManifest:
    """Check a bundle end to end and return its manifest.

    Args:
        bundle_dir: directory holding ``bundle.json`` and ``model.onnx``.
        expected_digest: the pinned bundle digest, when the caller has one.

    Raises:
        BundleError: digest mismatch, unreadable manifest, or a model file
            whose sha256 differs from the manifest's.
    """
    bundle_dir = Path(bundle_dir)
    if expected_digest is not None:
        actual = bundle_digest(bundle_dir)
        if actual != expected_digest:
            raise BundleError(
                f"{bundle_dir}: bundle digest {actual[:12]}… does not match "
                f"the pinned {expected_digest[:12]}…"
            )
    manifest = read_manifest(bundle_dir)
    if manifest.monitor_only:
        return manifest  # no model file: bundle.json is the whole bundle
    model_path = bundle_dir / MODEL_FILE
    if not model_path.is_file():
        raise BundleError(f"{model_path}: model file is missing")
    model_hash = file_sha256(model_path)
    pinned = manifest.model_sha256 or ""
    if model_hash != pinned:
        raise BundleError(
            f"{model_path}: sha256 {model_hash[:12]}… does not match the "
            f"manifest's {pinned[:12]}…"
        )
    return manifest
