"""Pull a bundle stored as an OCI artifact (``oci://…``) from a registry.

The agent speaks the distribution API's two read calls (manifest, blob) with
httpx; no registry client library is needed on a gateway. Every byte is
checked: the manifest against the reference's digest, each blob against its
descriptor's digest, and afterwards the bundle against the desired-model
record's pin (in :class:`~edgeloop_agent.scoring.model_store.ModelStore`).
Blob downloads resume with ``Range`` like plain HTTP bundles.

``mirror`` replaces the reference's registry (a site's pull-through mirror, the
same one its images come from). Anonymous pulls, including the bearer-token
challenge public registries answer with, are supported; credentials are not.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import httpx

from edgeloop_agent.contracts import BundleError, file_sha256
from edgeloop_agent.contracts.oci_bundle import (
    MANIFEST_MEDIA_TYPE,
    MAX_MANIFEST_BYTES,
    Layer,
    OciReference,
    bundle_layers,
    sha256_digest,
)
from edgeloop_agent.scoring.transfer import Transfer, stream_to_file

_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class OciPuller:
    """Resolves ``oci://`` bundle references and downloads their files."""

    def __init__(
        self,
        *,
        timeout_s: float,
        plain_http: tuple[str, ...] = (),
        mirror: str = "",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._timeout = timeout_s
        self._plain_http = plain_http
        self._mirror = mirror
        self._transport = transport
        self._layers: dict[str, tuple[OciReference, dict[str, Layer]]] = {}
        self._tokens: dict[str, str] = {}

    def download(
        self, uri: str, name: str, target_dir: Path, transfer: Transfer
    ) -> None:
        """Fetch bundle file ``name`` of artifact ``uri`` into ``target_dir``."""
        ref, layers = self._resolve(uri)
        layer = layers[name]
        target = target_dir / name
        if layer.size > transfer.max_bytes:
            raise BundleError(
                f"{uri}: {name} is {layer.size} bytes, more than the {transfer.max_bytes} allowed"
            )
        url = f"{ref.base_url(self._plain_http)}/blobs/{layer.digest}"
        limited = dataclasses.replace(transfer, max_bytes=layer.size)
        self._get_blob(url, ref, target, limited)
        actual = f"sha256:{file_sha256(target)}"
        if actual != layer.digest:
            target.unlink(missing_ok=True)
            raise BundleError(
                f"{uri}: {name} blob digest {actual[7:19]}… does not match "
                f"its descriptor {layer.digest[7:19]}…"
            )

    def _resolve(self, uri: str) -> tuple[OciReference, dict[str, Layer]]:
        """The pinned reference and the bundle's layers (fetched once per URI)."""
        if uri not in self._layers:
            ref = OciReference.parse(uri)
            if self._mirror:
                ref = ref.with_registry(self._mirror)
            url = f"{ref.base_url(self._plain_http)}/manifests/{ref.reference}"
            raw = self._get_manifest(url, ref)
            actual = sha256_digest(raw)
            if ref.digest and actual != ref.digest:
                raise BundleError(
                    f"{uri}: manifest digest {actual[7:19]}… does not match "
                    f"the reference {ref.digest[7:19]}…"
                )
            self._layers[uri] = (ref.pinned(actual), bundle_layers(uri, raw))
        return self._layers[uri]

    def _client(self, follow_redirects: bool = False) -> httpx.Client:
        return httpx.Client(
            timeout=self._timeout,
            transport=self._transport,
            follow_redirects=follow_redirects,
        )

    def _headers(self, ref: OciReference) -> dict[str, str]:
        token = self._tokens.get(ref.registry)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _get_manifest(self, url: str, ref: OciReference) -> bytes:
        headers = {"Accept": MANIFEST_MEDIA_TYPE}
        try:
            with self._client() as client:
                response = client.get(url, headers=headers | self._headers(ref))
                if response.status_code == 401 and self._authorise(
                    client, ref, response
                ):
                    response = client.get(url, headers=headers | self._headers(ref))
        except httpx.HTTPError as exc:
            raise BundleError(
                f"{url}: registry unreachable ({exc.__class__.__name__}: {exc})"
            ) from exc
        if response.status_code == 404:
            raise BundleError(f"{url}: no such manifest in the registry (HTTP 404)")
        if response.status_code != 200:
            raise BundleError(f"{url}: registry answered HTTP {response.status_code}")
        if len(response.content) > MAX_MANIFEST_BYTES:
            raise BundleError(f"{url}: manifest larger than {MAX_MANIFEST_BYTES} bytes")
        return response.content

    def _get_blob(
        self, url: str, ref: OciReference, target: Path, transfer: Transfer
    ) -> None:
        try:
            with self._client(follow_redirects=False) as client:
                stream_to_file(client, url, target, transfer, self._headers(ref))
        except httpx.HTTPError as exc:
            raise BundleError(
                f"{url}: download failed ({exc.__class__.__name__}: {exc})"
            ) from exc

    def _authorise(
        self, client: httpx.Client, ref: OciReference, answer: httpx.Response
    ) -> bool:
        """Follow a ``Bearer realm=…`` challenge for an anonymous pull token."""
        challenge = answer.headers.get("www-authenticate", "")
        if not challenge.lower().startswith("bearer "):
            return False
        params = dict(_CHALLENGE.findall(challenge))
        realm = params.pop("realm", "")
        if not realm:
            return False
        params.setdefault("scope", f"repository:{ref.repository}:pull")
        response = client.get(realm, params=params)
        if response.status_code != 200:
            raise BundleError(
                f"{realm}: token service answered HTTP {response.status_code} "
                "(only anonymous pulls are supported)"
            )
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            raise BundleError(f"{realm}: token service answered without a token")
        self._tokens[ref.registry] = token
        return True
