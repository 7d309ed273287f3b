"""KubernetesSink over real HTTP against a fake API server; kopf handlers called directly."""

from __future__ import annotations

import json
from pathlib import Path

import kopf
import pytest
from kubernetes import client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from edgeloop.core.errors import PermanentError
from edgeloop.rollout.apply import KubernetesSink, object_path
from edgeloop.rollout.controller import Reconciler
from edgeloop.rollout.fleet import FileFleet
from edgeloop.rollout.operator import reconcile_object
from edgeloop.rollout.plan import RegistryView
from edgeloop.rollout.sinks import LocalSink

from ....conftest import free_port
from ....servers import serve_app
from .test_plan import latency
from .test_render import DESIRED, ROLLOUT, rendered


class FakeApiServer:
    """Just enough of the Kubernetes API for apply/list/delete of a few kinds."""

    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}
        self.calls: list[tuple[str, str, dict]] = []
        self.fail_next: list[int] = []

    def app(self) -> Starlette:
        async def handle(request: Request) -> JSONResponse:
            path = request.url.path
            self.calls.append((request.method, path, dict(request.query_params)))
            if self.fail_next:
                status = self.fail_next.pop(0)
                return JSONResponse(
                    {"kind": "Status", "message": f"injected {status}"},
                    status_code=status,
                )
            if request.method == "PATCH":
                assert request.headers["content-type"] == "application/apply-patch+yaml"
                self.objects[path] = json.loads(await request.body())
                return JSONResponse(self.objects[path])
            if request.method == "DELETE":
                self.objects.pop(path, None)
                return JSONResponse({"kind": "Status", "status": "Success"})
            selector = dict(
                kv.split("=")
                for kv in request.query_params.get("labelSelector", "").split(",")
                if kv
            )
            items = [
                o
                for p, o in self.objects.items()
                if p.rsplit("/", 1)[0] == path
                and selector.items() <= o["metadata"].get("labels", {}).items()
            ]
            return JSONResponse({"items": items})

        return Starlette(
            routes=[Route("/{path:path}", handle, methods=["GET", "PATCH", "DELETE"])]
        )


@pytest.fixture()
def api():
    fake = FakeApiServer()
    with serve_app(fake.app(), free_port()) as url:
        configuration = client.Configuration(host=url)
        yield fake, client.ApiClient(configuration)


def test_server_side_apply_with_field_manager_then_prune(api):
    fake, api_client = api
    sink = KubernetesSink(api_client, retry_delays_s=(0.0,), sleep=lambda s: None)
    objects = rendered("kubeedge", 0)
    sink.apply("pumps", objects, {}, "m")
    paths = {
        object_path(
            o["apiVersion"],
            o["kind"],
            o["metadata"].get("namespace", ""),
            o["metadata"]["name"],
        )
        for o in objects
    }
    assert paths <= set(fake.objects)
    patches = [q for m, _, q in fake.calls if m == "PATCH"]
    assert all(q == {"fieldManager": "edgeloop", "force": "true"} for q in patches)
    assert (
        "/apis/apps.kubeedge.io/v1alpha1/nodegroups/pumps-canary" in fake.objects
    )  # cluster-scoped

    stale = dict(
        objects[0],
        metadata={**objects[0]["metadata"], "name": "pumps-old-desired-model"},
    )
    fake.objects["/api/v1/namespaces/edgeloop/configmaps/pumps-old-desired-model"] = (
        stale
    )
    sink.apply("pumps", objects, {}, "m")
    assert (
        "/api/v1/namespaces/edgeloop/configmaps/pumps-old-desired-model"
        not in fake.objects
    )


def test_transient_errors_are_retried_permanent_ones_are_not(api):
    fake, api_client = api
    slept: list[float] = []
    sink = KubernetesSink(
        api_client, retry_delays_s=(0.1, 0.2), sleep=slept.append, jitter=0
    )
    fake.fail_next = [503, 409]
    sink.apply("pumps", rendered("k3s", 0), {}, "m")
    assert slept == [0.1, 0.2]
    fake.fail_next = [422]
    with pytest.raises(
        PermanentError,
        match="apply ConfigMap/pumps-canary-desired-model: HTTP 422 injected 422",
    ):
        sink.apply("pumps", rendered("k3s", 0), {}, "m")


def test_retries_are_spread_by_jitter_within_bounds(api):
    fake, api_client = api
    slept: list[float] = []
    sink = KubernetesSink(api_client, retry_delays_s=(1.0, 2.0), sleep=slept.append)
    for _ in range(20):
        fake.fail_next = [503, 503]
        sink.apply("pumps", rendered("k3s", 0), {}, "m")
    firsts, seconds = slept[0::2], slept[1::2]
    assert all(1.0 <= s <= 1.5 for s in firsts)
    assert all(2.0 <= s <= 3.0 for s in seconds)
    assert len(set(firsts)) > 1  # not lock-step


def test_kopf_handler_reconciles_and_patches_status(tmp_path: Path):
    (tmp_path / "fleet.yaml").write_text("nodes: []\n")
    reconciler = Reconciler(
        registry_view=lambda r: RegistryView(DESIRED, latency=[latency()]),
        fleet=FileFleet(tmp_path / "fleet.yaml"),
        sink=LocalSink(tmp_path / "nodes"),
    )
    body = {
        "metadata": {"name": "pumps", "namespace": "edgeloop"},
        "spec": ROLLOUT.spec.model_dump(mode="json", exclude_none=True),
    }
    patch = kopf.Patch()
    status = reconcile_object(reconciler, body, patch)
    assert status["phase"] == "Progressing" and status["modelVersion"] == "3"
    assert patch["status"]["wave"] == "canary"
    assert (
        json.loads(
            (tmp_path / "nodes" / "edge-offshore-1" / "desired-model.json").read_text()
        )["version"]
        == "3"
    )

    bad = {**body, "spec": {**body["spec"], "runtime": {"image": "agent"}}}
    patch = kopf.Patch()
    with pytest.raises(kopf.PermanentError, match="runtime.image"):
        reconcile_object(reconciler, bad, patch)
    assert patch["status"]["phase"] == "Invalid"
