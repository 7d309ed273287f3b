"""A model bundle as an OCI artifact: references, media types, the manifest.

A site that already mirrors container images can mirror models through the same
registry. The layout follows the OCI image spec v1.1 artifact guidance (what
ORAS writes): an image manifest whose ``artifactType`` names the bundle, the
empty config, and one layer per bundle file titled with its file name::

    mediaType     application/vnd.oci.image.manifest.v1+json
    artifactType  application/vnd.edgeloop.bundle.v1
    config        application/vnd.oci.empty.v1+json   ({}, 2 bytes)
    layers        bundle.json  application/vnd.edgeloop.bundle.manifest.v1+json
                  model.onnx   application/vnd.edgeloop.model.onnx

The ``bundle.json`` layer's digest is the bundle digest a desired-model record
pins, so a record reads ``bundle_uri: oci://REGISTRY/REPO@sha256:<manifest>``
and ``bundle_sha256: <bundle.json>``: the manifest digest fixes every byte,
the record's digest is checked again after the pull.

Stdlib only: the agent pulls, the platform pushes, both parse the same way.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from edgeloop_agent.contracts.errors import BundleError
from edgeloop_agent.contracts.models import MANIFEST_FILE, MODEL_FILE

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE = "application/vnd.edgeloop.bundle.v1"
EMPTY_CONFIG_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"
LAYER_MEDIA_TYPES = {
    MANIFEST_FILE: "application/vnd.edgeloop.bundle.manifest.v1+json",
    MODEL_FILE: "application/vnd.edgeloop.model.onnx",
}
TITLE_ANNOTATION = "org.opencontainers.image.title"
MAX_MANIFEST_BYTES = 4 * 2**20
"""Registries cap manifests at 4 MiB; a larger answer is not a manifest."""

# distribution-spec: repository name components and tags
_REPOSITORY = re.compile(
    r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$"
)
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_REGISTRY = re.compile(
    r"^[A-Za-z0-9.-]+(?::[0-9]{1,5})?$|^\[[0-9A-Fa-f:]+\](?::[0-9]{1,5})?$"
)
_LOOPBACK = ("localhost", "127.", "[::1]")


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``, the form OCI descriptors use."""
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@dataclass(frozen=True)
class OciReference:
    """``oci://REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]``, parsed and checked."""

    registry: str
    repository: str
    tag: str = ""
    digest: str = ""

    @classmethod
    def parse(cls, uri: str) -> OciReference:
        """Parse an ``oci://`` URI; one readable line for anything malformed."""
        if not uri.startswith("oci://"):
            raise BundleError(f"{uri!r}: not an oci:// reference")
        rest = uri[len("oci://") :]
        registry, _, path = rest.partition("/")
        if not registry or not path or not _REGISTRY.match(registry):
            raise BundleError(
                f"{uri!r}: expected oci://REGISTRY[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST]"
            )
        path, _, digest = path.partition("@")
        repository, tag = path, ""
        last = path.rsplit("/", 1)[-1]
        if ":" in last:
            repository, _, tag = path.rpartition(":")
        if not _REPOSITORY.match(repository):
            raise BundleError(
                f"{uri!r}: invalid repository {repository!r} "
                "(lowercase letters, digits and . _ - separated by /)"
            )
        if tag and not _TAG.match(tag):
            raise BundleError(f"{uri!r}: invalid tag {tag!r}")
        if digest and not _DIGEST.match(digest):
            raise BundleError(
                f"{uri!r}: invalid digest {digest!r} (expected sha256: and 64 hex digits)"
            )
        if not tag and not digest:
            raise BundleError(f"{uri!r}: name a tag (:TAG) or a digest (@sha256:…)")
        return cls(registry=registry, repository=repository, tag=tag, digest=digest)

    @property
    def reference(self) -> str:
        """What ``/v2/<repo>/manifests/<reference>`` takes: the digest if pinned."""
        return self.digest or self.tag

    def with_registry(self, registry: str) -> OciReference:
        """The same artifact through another registry (a site's mirror)."""
        return OciReference(registry, self.repository, self.tag, self.digest)

    def pinned(self, digest: str) -> OciReference:
        """This reference fixed to a manifest digest (the tag dropped)."""
        return OciReference(self.registry, self.repository, "", digest)

    def base_url(self, plain_http: tuple[str, ...] = ()) -> str:
        """``http(s)://REGISTRY/v2/REPO``: HTTPS unless loopback or listed plain."""
        plain = self.registry.startswith(_LOOPBACK) or self.registry in plain_http
        return f"{'http' if plain else 'https'}://{self.registry}/v2/{self.repository}"

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"oci://{self.registry}/{self.repository}{tag}{digest}"


@dataclass(frozen=True)
class Layer:
    """One bundle file as a descriptor."""

    name: str
    digest: str
    size: int


def bundle_manifest(layers: list[Layer], annotations: dict[str, str]) -> bytes:
    """The manifest bytes for a bundle (compact JSON, keys sorted: reproducible)."""
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": {
            "mediaType": EMPTY_CONFIG_MEDIA_TYPE,
            "digest": sha256_digest(EMPTY_CONFIG),
            "size": len(EMPTY_CONFIG),
        },
        "layers": [
            {
                "mediaType": LAYER_MEDIA_TYPES[layer.name],
                "digest": layer.digest,
                "size": layer.size,
                "annotations": {TITLE_ANNOTATION: layer.name},
            }
            for layer in layers
        ],
        "annotations": annotations,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def bundle_layers(where: str, raw: bytes) -> dict[str, Layer]:
    """The bundle files a manifest lists, after checking it is an edgeloop bundle.

    Raises:
        BundleError: not JSON, not an OCI image manifest, another artifact type
            (a container image, say), or a layer list without both bundle files.
    """
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{where}: manifest is not JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise BundleError(f"{where}: manifest is not a JSON object")
    kind = body.get("artifactType") or (body.get("config") or {}).get("mediaType")
    if kind != ARTIFACT_TYPE:
        raise BundleError(
            f"{where}: not an edgeloop bundle (artifact type {kind!r}, "
            f"expected {ARTIFACT_TYPE!r})"
        )
    found: dict[str, Layer] = {}
    for layer in body.get("layers") or []:
        if not isinstance(layer, dict):
            continue
        name = (layer.get("annotations") or {}).get(TITLE_ANNOTATION)
        digest, size = layer.get("digest"), layer.get("size")
        if name not in LAYER_MEDIA_TYPES or name in found:
            continue
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise BundleError(f"{where}: layer {name} has an invalid digest {digest!r}")
        if not isinstance(size, int) or size < 0:
            raise BundleError(f"{where}: layer {name} has an invalid size {size!r}")
        found[name] = Layer(name, digest, size)
    missing = sorted(set(LAYER_MEDIA_TYPES) - set(found))
    if missing:
        raise BundleError(f"{where}: bundle manifest lacks {', '.join(missing)}")
    return found
