"""Leader election on a Kubernetes Lease, over real HTTP against a fake API server.

No Kubernetes API server can run on this machine; this one keeps Leases with
resourceVersions and answers 409 to a stale replace, which is the whole of
what the election relies on. The kubernetes client and KubernetesLease run
unchanged against it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from edgeloop.core.errors import RetryableError
from edgeloop.loop.k8s_lease import KubernetesLease

from ..conftest import free_port
from ..servers import serve_app

BASE = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"


class FakeLeases:
    def __init__(self) -> None:
        self.leases: dict[str, dict] = {}
        self.version = 0
        self.down = False

    def app(self) -> Starlette:
        async def collection(request: Request) -> JSONResponse:
            if self.down:
                return JSONResponse({"kind": "Status", "code": 503}, status_code=503)
            body = json.loads(await request.body())
            name = body["metadata"]["name"]
            if name in self.leases:
                return JSONResponse({"kind": "Status", "code": 409}, status_code=409)
            return JSONResponse(self._store(name, body), status_code=201)

        async def item(request: Request) -> JSONResponse:
            if self.down:
                return JSONResponse({"kind": "Status", "code": 503}, status_code=503)
            name = request.path_params["name"]
            if request.method == "GET":
                if name not in self.leases:
                    return JSONResponse(
                        {"kind": "Status", "code": 404}, status_code=404
                    )
                return JSONResponse(self.leases[name])
            body = json.loads(await request.body())
            seen = body["metadata"].get("resourceVersion")
            if seen != self.leases[name]["metadata"]["resourceVersion"]:
                return JSONResponse({"kind": "Status", "code": 409}, status_code=409)
            return JSONResponse(self._store(name, body))

        path = BASE.format(ns="{ns}")
        return Starlette(
            routes=[
                Route(path, collection, methods=["POST"]),
                Route(path + "/{name}", item, methods=["GET", "PUT"]),
            ]
        )

    def _store(self, name: str, body: dict) -> dict:
        self.version += 1
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            **body,
            "metadata": {**body["metadata"], "resourceVersion": str(self.version)},
        }
        self.leases[name] = body
        return body


@pytest.fixture()
def api():
    fake = FakeLeases()
    with (
        serve_app(fake.app(), free_port()) as url,
        client.ApiClient(client.Configuration(host=url)) as api_client,
    ):
        yield fake, api_client


def test_one_holder_at_a_time_until_the_lease_expires(api):
    fake, api_client = api
    a = KubernetesLease(api_client, "edgeloop", "loop-a", ttl_s=60)
    b = KubernetesLease(api_client, "edgeloop", "loop-b", ttl_s=60)
    start = datetime.now(UTC)
    assert a.acquire(start)
    assert not b.acquire(start + timedelta(seconds=10))
    assert a.acquire(start + timedelta(seconds=30))  # renewed
    assert a.leader() == "loop-a"
    spec = fake.leases["edgeloop-loop"]["spec"]
    assert spec["holderIdentity"] == "loop-a" and spec["leaseDurationSeconds"] == 60
    # a stopped renewing: after its lease ran out b takes over, a transition
    assert b.acquire(datetime.now(UTC) + timedelta(seconds=100))
    assert fake.leases["edgeloop-loop"]["spec"]["leaseTransitions"] == 1
    b.release()
    assert fake.leases["edgeloop-loop"]["spec"].get("holderIdentity") is None
    assert a.acquire(datetime.now(UTC))


def test_a_lost_race_is_a_refusal_not_an_error(api):
    fake, api_client = api
    a = KubernetesLease(api_client, "edgeloop", "loop-a", ttl_s=60)
    b = KubernetesLease(api_client, "edgeloop", "loop-b", ttl_s=60)
    assert a.acquire()
    stale = b._read()  # b read the expired-looking lease ...
    stale.spec.renew_time = datetime.now(UTC) - timedelta(hours=1)
    assert a.acquire()  # ... then a renewed it (a new resourceVersion)
    b._read = lambda: stale  # type: ignore[method-assign]
    assert not b.acquire()  # 409 Conflict: b does not lead
    assert fake.leases["edgeloop-loop"]["spec"]["holderIdentity"] == "loop-a"


def test_an_unreachable_api_server_is_retryable_and_named(api):
    fake, api_client = api
    fake.down = True
    lease = KubernetesLease(api_client, "edgeloop", "loop-a")
    with pytest.raises(
        RetryableError, match="cannot read Lease edgeloop/edgeloop-loop"
    ):
        lease.acquire()
