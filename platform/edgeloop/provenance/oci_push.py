"""Push a verified bundle to an OCI registry as an artifact (the ORAS layout).

Uses the distribution API's upload calls directly (``POST`` an upload,
``PUT`` the blob with its digest, ``PUT`` the manifest), so any registry that
stores OCI image manifests works: distribution, Harbor, Zot, ECR, GHCR. The
layout and media types live in :mod:`edgeloop_agent.contracts.oci_bundle`,
shared with the agent that pulls.

Nothing is half-pushed: blobs go first and only the manifest makes them
reachable, so a push that fails midway leaves no tag pointing at a partial
bundle (the registry's garbage collector removes unreferenced blobs).
Anonymous or bearer-token pushes only: ``EDGELOOP_REGISTRY_TOKEN`` (if set) is
sent as ``Authorization: Bearer``.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from edgeloop.core.errors import PermanentError, RetryableError, UsageError
from edgeloop_agent.contracts import MANIFEST_FILE, MODEL_FILE
from edgeloop_agent.contracts.errors import BundleError
from edgeloop_agent.contracts.oci_bundle import (
    EMPTY_CONFIG,
    EMPTY_CONFIG_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    Layer,
    OciReference,
    bundle_manifest,
    sha256_digest,
)


def parse_target(uri: str) -> OciReference:
    """A push target: ``oci://REGISTRY/REPO:TAG`` (a digest cannot be chosen)."""
    try:
        ref = OciReference.parse(uri)
    except BundleError as exc:
        raise UsageError(exc.message) from exc
    if ref.digest or not ref.tag:
        raise UsageError(
            f"{uri!r}: push to a tag (oci://REGISTRY/REPO:TAG); the digest is the result"
        )
    return ref


def push_bundle(
    bundle_dir: Path,
    target: OciReference,
    annotations: dict[str, str],
    *,
    plain_http: tuple[str, ...] = (),
    timeout_s: float = 120.0,
) -> OciReference:
    """Push ``bundle.json`` and ``model.onnx`` and tag them; returns the pinned reference."""
    base = target.base_url(plain_http)
    token = os.environ.get("EDGELOOP_REGISTRY_TOKEN", "")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    layers = []
    try:
        with httpx.Client(timeout=timeout_s, headers=headers) as client:
            _put_blob(client, base, EMPTY_CONFIG, EMPTY_CONFIG_MEDIA_TYPE)
            for name in (MANIFEST_FILE, MODEL_FILE):
                data = (bundle_dir / name).read_bytes()
                digest = _put_blob(client, base, data, "application/octet-stream")
                layers.append(Layer(name, digest, len(data)))
            manifest = bundle_manifest(layers, annotations)
            answer = client.put(
                f"{base}/manifests/{target.tag}",
                content=manifest,
                headers={"Content-Type": MANIFEST_MEDIA_TYPE},
            )
            _check(answer, f"{target}: manifest")
    except httpx.HTTPError as exc:
        raise RetryableError(
            f"{target.registry}: registry unreachable ({exc.__class__.__name__}: {exc})",
            delay=5.0,
        ) from exc
    digest = sha256_digest(manifest)
    echoed = answer.headers.get("docker-content-digest", digest)
    if echoed != digest:
        raise PermanentError(
            f"{target}: registry stored the manifest as {echoed}, expected {digest}"
        )
    return target.pinned(digest)


def _put_blob(client: httpx.Client, base: str, data: bytes, kind: str) -> str:
    """Upload one blob unless the registry has it; returns its digest."""
    digest = sha256_digest(data)
    if client.head(f"{base}/blobs/{digest}").status_code == 200:
        return digest
    started = client.post(f"{base}/blobs/uploads/")
    _check(started, f"{base}: starting an upload")
    location = started.headers.get("location", "")
    if not location:
        raise PermanentError(f"{base}: registry started an upload without a Location")
    url = httpx.URL(base).join(location)
    url = url.copy_merge_params({"digest": digest})
    _check(
        client.put(url, content=data, headers={"Content-Type": kind}),
        f"{base}: uploading {digest[:19]}…",
    )
    return digest


def _check(answer: httpx.Response, what: str) -> None:
    """Raise with the registry's own error message for any non-2xx answer."""
    if answer.is_success:
        return
    detail = answer.text.strip()[:300]
    try:
        errors = answer.json().get("errors") or []
        detail = (
            "; ".join(f"{e.get('code', '')}: {e.get('message', '')}" for e in errors)
            or detail
        )
    except ValueError:
        pass
    message = f"{what}: registry answered HTTP {answer.status_code} ({detail})"
    if answer.status_code >= 500 or answer.status_code == 429:
        raise RetryableError(message, delay=5.0)
    raise PermanentError(message)
