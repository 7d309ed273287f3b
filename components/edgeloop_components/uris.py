"""Data by URI: a plain path, ``file://``, ``s3://`` or ``http(s)://``, read through fsspec.

Pipeline steps, ``data validate`` and ``pipeline run`` take a dataset as a URI
so the same compiled pipeline runs on a laptop (a directory) and in a cluster
(object storage; the IR mounts no volume). A remote dataset is *staged*: copied
into the step's scratch directory once, then validated by the same code as a
local one, so remote and local runs cannot disagree about what they read.

S3 works with any S3 API (AWS, MinIO, Ceph RGW): the endpoint and credentials
come from the standard AWS conventions (``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, profiles,
instance roles); this module knows nothing but the URL.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edgeloop_components.errors import SchemaError

REMOTE_SCHEMES = frozenset({"s3", "s3a", "http", "https"})
"""Schemes staged through fsspec; anything else with a scheme is refused."""
SCHEMA_FILE = "schema.yaml"
MAX_STAGED_BYTES = 20 * 2**30
"""A training dataset larger than this is a mistake in the URI, not a dataset."""


def scheme(uri: str) -> str:
    """The URI's scheme ('' for a plain path; Windows drive letters count as paths)."""
    found = urlsplit(str(uri)).scheme.lower()
    return "" if len(found) <= 1 else found


def is_remote(uri: str) -> bool:
    """True for URIs that must be fetched (s3, http, https)."""
    return scheme(uri) in REMOTE_SCHEMES


def local_path(uri: str) -> Path:
    """A plain path or ``file://`` URI as a Path; anything else is refused."""
    kind = scheme(uri)
    if kind == "":
        return Path(uri)
    if kind == "file":
        return Path(urlsplit(uri).path)
    raise SchemaError(
        f"{uri}: unsupported scheme {kind!r} (use a path, file://, s3://, http(s)://)"
    )


def endpoint(uri: str) -> str:
    """What a failure names: the S3 endpoint in use, or the URL's host."""
    if scheme(uri) in ("s3", "s3a"):
        return (
            os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
            or "the default AWS S3 endpoint"
        )
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def filesystem(uri: str) -> tuple[Any, str]:
    """The fsspec filesystem for a remote URI and the path inside it (bucket/key for S3)."""
    return _filesystem(uri)


def _filesystem(uri: str) -> tuple[Any, str]:
    import fsspec

    kind = scheme(uri)
    options: dict[str, Any] = {}
    if kind in ("s3", "s3a"):
        kind = "s3"
        url = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get(
            "AWS_ENDPOINT_URL"
        )
        # Few, short retries: an unreachable endpoint should fail in seconds
        # with one line, not after botocore's minutes of silent retrying.
        options["config_kwargs"] = {
            "connect_timeout": 5,
            "retries": {"max_attempts": 3, "mode": "standard"},
        }
        if url:
            options["endpoint_url"] = url
    fs = fsspec.filesystem(kind, **options)
    path = uri if kind in ("http", "https") else fs._strip_protocol(uri)
    return fs, path


def _fetch_error(uri: str, exc: BaseException) -> SchemaError:
    if isinstance(exc, FileNotFoundError):
        return SchemaError(f"{uri}: no such object at {endpoint(uri)}")
    if isinstance(exc, PermissionError):
        return SchemaError(
            f"{uri}: access denied by {endpoint(uri)} (check AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY or the bucket policy)"
        )
    first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
    return SchemaError(f"{uri}: cannot read from {endpoint(uri)}: {first}")


def stage(uri: str, scratch: Path) -> Path:
    """A local path holding what ``uri`` names: itself if local, else a copy in ``scratch``.

    A remote directory (``s3://bucket/datasets/pumps/``) is copied whole, so
    ``schema.yaml`` and the files it names stay side by side; a remote file
    keeps its name. HTTP(S) serves files only (there is no listing).

    Raises:
        SchemaError: one line naming the URI and endpoint (unreachable, missing,
            denied, too large).
    """
    if not is_remote(uri):
        return local_path(uri)
    fs, path = _filesystem(uri)
    name = Path(urlsplit(uri).path.rstrip("/")).name or "data"
    target = scratch / name
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        directory = scheme(uri) not in ("http", "https") and fs.isdir(path)
        if directory:
            sizes = fs.du(path, total=False)
            if not sizes:
                raise SchemaError(f"{uri}: empty directory at {endpoint(uri)}")
        else:
            sizes = {path: fs.size(path) or 0}
        total = sum(int(size or 0) for size in sizes.values())
        if total > MAX_STAGED_BYTES:
            raise SchemaError(
                f"{uri}: {total:,} bytes is over the {MAX_STAGED_BYTES:,}-byte limit "
                "for one dataset"
            )
        if directory:
            fs.get(path.rstrip("/") + "/", str(target) + "/", recursive=True)
        else:
            fs.get(path, str(target))
    except SchemaError:
        raise
    except Exception as exc:  # botocore/aiohttp/fsspec raise many unrelated classes
        raise _fetch_error(uri, exc) from exc
    return target


def stage_dataset(
    data_uri: str, schema_uri: str, labels_uri: str, scratch: Path
) -> tuple[Path, Path | None, Path | None]:
    """Stage the readings (file or dataset directory), schema and failure log.

    Returns local (data, schema or None, labels or None) paths, in that order.
    """
    data = stage(data_uri, scratch / "data")
    schema = stage(schema_uri, scratch / "schema") if schema_uri else None
    labels = stage(labels_uri, scratch / "labels") if labels_uri else None
    return data, schema, labels


def describe(uri: str) -> str:
    """The dataset URI recorded in lineage: remote URIs as given, paths resolved."""
    return uri if is_remote(uri) else str(local_path(uri).resolve())
