"""Kubernetes sink: server-side apply with field manager ``edgeloop``, then prune.

The only module of the controller that talks to a Kubernetes API server. It
uses the ``kubernetes`` 30.x client's generic ``call_api`` with the apply-patch
content type, so no discovery round-trips are needed: the few kinds we render
map to their REST paths here.

A wave is validated as a whole before this sink sees it; objects are applied in
render order (ConfigMap before the workload that mounts it). Server-side apply
is idempotent, so if a call still fails after the retries, the next reconcile
applies the same full set again and the wave converges instead of staying half
applied. API errors are classified once, here: 409/429/5xx and connection
errors are retryable, other 4xx are permanent.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from edgeloop.core.errors import PermanentError, RetryableError

log = logging.getLogger(__name__)

FIELD_MANAGER = "edgeloop"
#: kind -> (plural, namespaced)
KINDS: dict[str, tuple[str, bool]] = {
    "ConfigMap": ("configmaps", True),
    "Service": ("services", True),
    "Deployment": ("deployments", True),
    "EdgeApplication": ("edgeapplications", True),
    "NodeGroup": ("nodegroups", False),
    "ImagePrePullJob": ("imageprepulljobs", False),
    "HelmChart": ("helmcharts", True),
}


def object_path(api_version: str, kind: str, namespace: str, name: str = "") -> str:
    """REST path of an object (or of its collection when ``name`` is empty)."""
    if kind not in KINDS:
        raise PermanentError(
            f"cannot apply kind {kind!r}: not one the controller renders"
        )
    plural, namespaced = KINDS[kind]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    scope = f"/namespaces/{namespace}" if namespaced else ""
    return f"{base}{scope}/{plural}" + (f"/{name}" if name else "")


def classify(exc: Exception, what: str) -> Exception:
    """Our error class for a client exception."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        reason = exc.reason or ""
        try:
            message = json.loads(exc.body or "{}").get("message", reason)
        except (ValueError, AttributeError):
            message = reason
        text = f"{what}: HTTP {status} {message}".strip()
        if status in (409, 429) or status >= 500 or status == 0:
            return RetryableError(text, delay=2.0)
        return PermanentError(text)
    return RetryableError(f"{what}: {exc.__class__.__name__}: {exc}", delay=2.0)


class KubernetesSink:
    """Apply a rollout's objects to a cluster and prune what it no longer owns."""

    reaches_cluster = True
    """Objects reach edge nodes: bundle URIs must be fetchable."""

    def __init__(
        self,
        api_client: Any,
        retry_delays_s: Sequence[float] = (0.5, 2.0, 5.0),
        sleep: Callable[[float], None] = time.sleep,
        jitter: float = 0.5,
    ) -> None:
        self.api = api_client
        self.delays = tuple(retry_delays_s)
        self.jitter = jitter
        self._sleep = sleep

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        """One API call; retryable failures are retried on the delays, with jitter.

        tenacity does the retrying: ``len(delays)`` retries, each waiting its
        delay plus a random share up to ``jitter`` of it (many controllers
        retrying one API server do not retry in step); permanent errors and the
        last retryable one are raised as our classes.
        """
        from kubernetes.client.exceptions import ApiException
        from tenacity import (
            Retrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_chain,
            wait_fixed,
            wait_random,
        )
        from urllib3.exceptions import HTTPError

        def once() -> Any:
            try:
                data, _, _ = self.api.call_api(
                    path,
                    method,
                    response_type="object",
                    auth_settings=["BearerToken"],
                    _return_http_data_only=False,
                    _preload_content=True,
                    **kwargs,
                )
            except (ApiException, HTTPError, OSError) as exc:
                raise classify(exc, what) from exc
            return data

        retrying = Retrying(
            stop=stop_after_attempt(len(self.delays) + 1),
            wait=wait_chain(
                *(wait_fixed(d) + wait_random(0, d * self.jitter) for d in self.delays)
            )
            if self.delays
            else wait_fixed(0),
            retry=retry_if_exception_type(RetryableError),
            sleep=self._sleep,
            reraise=True,
            before_sleep=lambda state: log.warning(
                "%s; retrying in %.1fs",
                state.outcome.exception() if state.outcome else what,
                state.upcoming_sleep,
            ),
        )
        return retrying(once)

    def apply(
        self,
        rollout: str,
        objects: list[dict[str, Any]],
        nodes: dict[str, list[str]],
        message: str,
    ) -> bool:
        """Server-side apply every object, then delete owned objects not in the set."""
        for obj in objects:
            meta = obj["metadata"]
            path = object_path(
                obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]
            )
            self._call(
                "PATCH",
                path,
                f"apply {obj['kind']}/{meta['name']}",
                body=obj,
                query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
                header_params={
                    "Content-Type": "application/apply-patch+yaml",
                    "Accept": "application/json",
                },
            )
        self._prune(rollout, objects)
        return True

    def _prune(self, rollout: str, objects: list[dict[str, Any]]) -> None:
        keep = {
            (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
            for o in objects
        }
        namespaces = {o["metadata"].get("namespace", "") for o in objects} or {""}
        kinds = {(o["apiVersion"], o["kind"]) for o in objects}
        selector = (
            f"app.kubernetes.io/managed-by=edgeloop,edgeloop.io/rollout={rollout}"
        )
        for api_version, kind in sorted(kinds):
            for namespace in sorted(namespaces if KINDS[kind][1] else {""}):
                listing = self._call(
                    "GET",
                    object_path(api_version, kind, namespace),
                    f"list {kind}",
                    query_params=[("labelSelector", selector)],
                    header_params={"Accept": "application/json"},
                )
                for item in (listing or {}).get("items", []):
                    meta = item.get("metadata", {})
                    key = (kind, meta.get("namespace", ""), meta.get("name", ""))
                    if key not in keep:
                        log.info(
                            "pruning %s/%s (no longer part of rollout %s)",
                            kind,
                            key[2],
                            rollout,
                        )
                        self._call(
                            "DELETE",
                            object_path(api_version, kind, key[1], key[2]),
                            f"delete {kind}/{key[2]}",
                            header_params={"Accept": "application/json"},
                        )
