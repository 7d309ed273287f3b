"""One bounded download: size cap, deadline, same-origin redirects, cancellation.

Every byte of a bundle is digest-checked afterwards, but a check after the
download does not stop a source that never ends: an endless stream once
filled 150 MiB of a gateway's disk and kept a newer desired model waiting.
So each attempt streams to the partial file under :class:`Transfer` limits:

* no more than ``max_bytes`` (what the pinned manifest declares for
  ``model.onnx``, a fixed cap for ``bundle.json``) — over it, the partial file
  is deleted;
* no longer than the attempt's ``deadline`` (the partial file is kept, the
  next attempt resumes with ``Range``);
* redirects only to the same origin or to a host in ``redirect_hosts`` (an
  object store behind a registry, say);
* stopped as soon as ``cancelled()`` says a newer desired model replaced the
  one being fetched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from edgeloop_agent.contracts import BundleError

MAX_REDIRECTS = 5


@dataclass(frozen=True)
class Transfer:
    """The limits of one download attempt."""

    max_bytes: int
    deadline: float
    """``time.monotonic()`` value after which the attempt stops."""
    redirect_hosts: tuple[str, ...] = ()
    cancelled: Callable[[], bool] = field(default=lambda: False)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def stream_to_file(
    client: httpx.Client,
    url: str,
    target: Path,
    transfer: Transfer,
    headers: dict[str, str] | None = None,
) -> None:
    """GET ``url`` into ``target`` (appending to a partial file) within ``transfer``.

    The client must not follow redirects itself: they are checked here.
    """
    have = target.stat().st_size if target.exists() else 0
    if have > transfer.max_bytes:
        target.unlink()
        have = 0
    current = httpx.URL(url)
    for _ in range(MAX_REDIRECTS + 1):
        request_headers = dict(headers or {})
        if have:
            request_headers["Range"] = f"bytes={have}-"
        with client.stream("GET", current, headers=request_headers) as response:
            if response.is_redirect:
                current = _next_hop(current, response, transfer)
                continue
            if response.status_code == 416 and have:
                return  # complete already; the digest check decides
            if response.status_code not in (200, 206):
                raise BundleError(f"{current}: HTTP {response.status_code}")
            _write(
                response, target, transfer, have if response.status_code == 206 else 0
            )
            return
    raise BundleError(f"{url}: more than {MAX_REDIRECTS} redirects")


def _next_hop(
    current: httpx.URL, response: httpx.Response, transfer: Transfer
) -> httpx.URL:
    location = response.headers.get("location", "")
    if not location:
        raise BundleError(f"{current}: redirect without a Location")
    target = current.join(location)
    same = _origin(target) == _origin(current)
    if not same and target.host not in transfer.redirect_hosts:
        raise BundleError(
            f"{current}: redirect to another host {target.host!r} refused "
            "(allow it in EDGELOOP_AGENT_MODEL__REDIRECT_HOSTS)"
        )
    return target


def _write(
    response: httpx.Response, target: Path, transfer: Transfer, have: int
) -> None:
    written = have
    with target.open("ab" if have else "wb") as handle:
        for chunk in response.iter_bytes():  # as received: limits act at once
            written += len(chunk)
            if written > transfer.max_bytes:
                handle.close()
                target.unlink(missing_ok=True)
                raise BundleError(
                    f"{response.url}: more than the {transfer.max_bytes} bytes declared; "
                    "download stopped and discarded"
                )
            handle.write(chunk)
            if transfer.cancelled():
                raise BundleError(
                    f"{response.url}: download stopped, a newer desired model replaced it"
                )
            if time.monotonic() > transfer.deadline:
                raise BundleError(
                    f"{response.url}: download did not finish before its deadline "
                    f"({written} bytes kept; the next attempt resumes)"
                )
