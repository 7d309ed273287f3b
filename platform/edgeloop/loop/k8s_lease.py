"""Leader election with a Kubernetes Lease (``coordination.k8s.io/v1``), in cluster mode.

The same contract as :class:`edgeloop.loop.lease.LeaderLock` (acquire, release,
leader), on the object Kubernetes itself uses for this: ``kubectl get lease``
shows who leads. Taking and renewing replace the Lease at the
``resourceVersion`` that was read, so two replicas racing for it cannot both
win: the API server answers the loser 409 Conflict.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edgeloop.core.errors import RetryableError, UsageError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def in_pod() -> bool:
    """Running in a pod with a service-account token (the API is reachable)."""
    return (
        bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        and (SERVICE_ACCOUNT / "token").exists()
    )


def from_cluster(namespace: str, holder: str, ttl_s: float) -> KubernetesLease:
    """A Lease through the in-cluster config (or the kubeconfig outside a pod)."""
    from kubernetes import client, config

    try:
        if in_pod():
            config.load_incluster_config()
        else:
            config.load_kube_config()
    except config.ConfigException as exc:
        raise UsageError(
            f"loop.lease=kubernetes but no cluster credentials: {exc}"
        ) from exc
    if not namespace and (SERVICE_ACCOUNT / "namespace").exists():
        namespace = (SERVICE_ACCOUNT / "namespace").read_text().strip()
    return KubernetesLease(
        client.ApiClient(), namespace or "default", holder, ttl_s=ttl_s
    )


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class KubernetesLease:
    """A named Lease in ``namespace`` held by one ``holder`` at a time."""

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        holder: str,
        name: str = "edgeloop-loop",
        ttl_s: float = 60.0,
    ) -> None:
        from kubernetes import client

        self._api = client.CoordinationV1Api(api_client)
        self._client = client
        self.namespace = namespace
        self.holder = holder
        self.name = name
        self.ttl = timedelta(seconds=ttl_s)

    def _read(self) -> Any | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self._api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._error(exc, "read") from exc

    def _error(self, exc: Exception, what: str) -> RetryableError:
        status = getattr(exc, "status", "")
        return RetryableError(
            f"cannot {what} Lease {self.namespace}/{self.name} (HTTP {status}): "
            "the loop service waits and tries again",
            delay=10,
        )

    def _spec(self, now: datetime, acquired: datetime, transitions: int) -> Any:
        return self._client.V1LeaseSpec(
            holder_identity=self.holder,
            lease_duration_seconds=max(1, int(self.ttl.total_seconds())),
            acquire_time=acquired,
            renew_time=now,
            lease_transitions=transitions,
        )

    def acquire(self, now: datetime | None = None) -> bool:
        """Take or renew the Lease; False while another holder's is unexpired or on a lost race."""
        from kubernetes.client.exceptions import ApiException

        now = now or datetime.now(UTC)
        lease = self._read()
        try:
            if lease is None:
                self._api.create_namespaced_lease(
                    self.namespace,
                    self._client.V1Lease(
                        metadata=self._client.V1ObjectMeta(name=self.name),
                        spec=self._spec(now, now, 0),
                    ),
                )
                return True
            spec = lease.spec
            renewed = _aware(spec.renew_time) or datetime.min.replace(tzinfo=UTC)
            duration = timedelta(seconds=spec.lease_duration_seconds or 0)
            mine = spec.holder_identity == self.holder
            if not mine and spec.holder_identity and renewed + duration > now:
                return False
            transitions = (spec.lease_transitions or 0) + (0 if mine else 1)
            acquired = (_aware(spec.acquire_time) or now) if mine else now
            lease.spec = self._spec(now, acquired, transitions)
            self._api.replace_namespaced_lease(self.name, self.namespace, lease)
            return True
        except ApiException as exc:
            if exc.status == 409:  # another replica won the race
                return False
            raise self._error(exc, "write") from exc

    def release(self) -> None:
        """Clear the holder (on a clean stop) so another replica need not wait out the TTL."""
        from kubernetes.client.exceptions import ApiException

        lease = self._read()
        if lease is None or lease.spec.holder_identity != self.holder:
            return
        lease.spec.holder_identity = None
        with contextlib.suppress(ApiException):  # else it expires by itself
            self._api.replace_namespaced_lease(self.name, self.namespace, lease)

    def leader(self) -> str | None:
        """Who holds the Lease now, or None."""
        lease = self._read()
        if lease is None or not lease.spec.holder_identity:
            return None
        renewed = _aware(lease.spec.renew_time)
        duration = timedelta(seconds=lease.spec.lease_duration_seconds or 0)
        if renewed is None or renewed + duration <= datetime.now(UTC):
            return None
        return str(lease.spec.holder_identity)
