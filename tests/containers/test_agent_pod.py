"""What the controller renders runs as a pod: the agent from the registry, v1 then v2.

The K3s renderer's Deployment + desired-model ConfigMap, and the Deployment
inside a KubeEdge EdgeApplication's workload template, are played with
``podman kube play`` as rendered, except for what only a kubelet on a real
node provides (:func:`as_podman_pod`, each change named there). The agent
starts as the rendered user with the rendered read-only root filesystem,
dropped capabilities, memory limit, env and mounts, reads its desired model
from the mounted ConfigMap, fetches the bundle over HTTP, becomes ready and
scores; then the ConfigMap's file is replaced the way the kubelet updates a
ConfigMap volume, and the agent switches to v2 without a container restart.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from edgeloop.rollout.render.group import GroupRender, render_group
from edgeloop.rollout.spec import EdgeRollout
from edgeloop_agent.contracts import DesiredModel, bundle_digest

from ..conftest import free_port
from ..integration.test_agent_http import SENSORS
from .conftest import podman

# generous: the first run builds the images (the platform image takes minutes)
pytestmark = [pytest.mark.containers, pytest.mark.slow, pytest.mark.timeout(1200)]
NODE = "edge-offshore-1"


def as_podman_pod(deployment: dict[str, Any], port: int) -> dict[str, Any]:
    """The rendered Deployment with the three things a kubelet does differently.

    * ``spec.nodeName`` (the agent's node id) is resolved by the kubelet of the
      node the pod runs on; podman has no nodes: the test gives the value.
    * The pod shares the host's network (``hostNetwork``), so the agent reaches
      the bundle server on 127.0.0.1 and the test reaches the agent there.
    * With host networking podman refuses container port mappings, so
      ``ports`` go and the probes name the port by number.
    """
    out = copy.deepcopy(deployment)
    pod = out["spec"]["template"]["spec"]
    pod["hostNetwork"] = True
    (container,) = pod["containers"]
    container.pop("ports")
    for probe in ("livenessProbe", "readinessProbe"):
        container[probe]["httpGet"]["port"] = port
    for env in container["env"]:
        if (
            env.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            == "spec.nodeName"
        ):
            env.pop("valueFrom")
            env["value"] = NODE
    return out


def _record(base: str, root: Path, version: str) -> DesiredModel:
    return DesiredModel(
        model_name="pump-failure",
        version=version,
        bundle_uri=f"{base}/v{version}",
        bundle_sha256=bundle_digest(root / f"v{version}"),
        rollout="pumps",
    )


def _rendered(
    platform: str,
    image: str,
    port: int,
    desired: DesiredModel,
    intake_url: str = "",
    extra_env: dict[str, str] | None = None,
) -> list[dict]:
    rollout = EdgeRollout.model_validate(
        {
            "metadata": {"name": "pumps", "namespace": "edgeloop"},
            "spec": {
                "platform": platform,
                "model": {"name": "pump-failure", "alias": "champion"},
                "runtime": {
                    "image": image,
                    "intakeUrl": intake_url,
                    "tokenSecret": "",
                    # the pod shares the host network: loopback and a free
                    # port, set the way an operator sets any agent setting
                    "env": {
                        "EDGELOOP_AGENT_SERVER__HOST": "127.0.0.1",
                        "EDGELOOP_AGENT_SERVER__PORT": str(port),
                        "EDGELOOP_AGENT_MODEL__POLL_INTERVAL_S": "0.5",
                        **(extra_env or {}),
                    },
                },
                "groups": [{"name": "canary", "nodes": [NODE], "site": "offshore-01"}],
                "waves": [{"name": "canary", "groups": ["canary"]}],
            },
        }
    )
    spec = rollout.spec
    return render_group(
        GroupRender("pumps", "edgeloop", spec, spec.groups[0], desired, 1)
    )


def _deployment(objects: list[dict], platform: str) -> dict:
    if platform == "k3s":
        return next(o for o in objects if o["kind"] == "Deployment")
    eapp = next(o for o in objects if o["kind"] == "EdgeApplication")
    (manifest,) = eapp["spec"]["workloadTemplate"]["manifests"]
    return manifest


@contextmanager
def pulled_from_registry(ref: str) -> Iterator[None]:
    """Remove the image from local storage, so what runs must be pulled from the registry.

    Afterwards the pulled copy gets back the local tags the build gave it (the
    same image: its build-key label comes along), so the next ``make test``
    finds the build cached.
    """
    found = podman("image", "inspect", ref, check=False)
    tags = json.loads(found.stdout)[0]["RepoTags"] if found.returncode == 0 else []
    if found.returncode == 0:
        podman("rmi", "-f", json.loads(found.stdout)[0]["Id"])
    try:
        yield
    finally:
        for tag in tags:
            if tag.startswith("localhost/"):
                podman("tag", ref, tag, check=False)


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("platform", ["k3s", "kubeedge"])
def test_the_rendered_agent_runs_as_a_pod_and_switches_from_v1_to_v2(
    platform, agent_image, bundle_server, tmp_path
):
    base, root = bundle_server
    port = free_port()
    objects = _rendered(platform, agent_image, port, _record(base, root, "1"))
    configmap = next(o for o in objects if o["kind"] == "ConfigMap")
    deployment = _deployment(objects, platform)
    play = tmp_path / "pod.yaml"
    play.write_text(yaml.safe_dump_all([configmap, as_podman_pod(deployment, port)]))
    stack = ExitStack()
    stack.enter_context(pulled_from_registry(agent_image))
    container = f"{deployment['metadata']['name']}-pod-0-agent"
    url = f"http://127.0.0.1:{port}"
    try:
        podman("kube", "play", "--tls-verify=false", str(play))
        _wait(
            lambda: httpx.get(f"{url}/v2/health/ready").status_code == 200,
            90,
            "the agent pod to become ready on v1",
        )
        info = json.loads(podman("inspect", container).stdout)[0]
        rendered = deployment["spec"]["template"]["spec"]["containers"][0]
        assert info["Config"]["User"] == "10001:10001"
        assert info["HostConfig"]["ReadonlyRootfs"] is True
        assert info["HostConfig"]["Memory"] == 256 * 2**20
        assert rendered["resources"]["limits"]["memory"] == "256Mi"
        assert "CAP_NET_RAW" in info["HostConfig"]["CapDrop"]
        image = json.loads(podman("image", "inspect", info["Image"]).stdout)[0]
        assert agent_image in image["RepoDigests"]  # the registry's, by digest
        meta = httpx.get(f"{url}/v2/models/edge-model").json()
        assert meta["versions"] == ["1"]
        scored = httpx.post(
            f"{url}/predict",
            json={"readings": [{"entity": "p1", "values": SENSORS}] * 12},
        )
        assert scored.status_code == 200, scored.text
        started = info["State"]["StartedAt"]

        # v1 -> v2: the kubelet swaps a ConfigMap volume's files atomically
        volume = podman(
            "volume",
            "inspect",
            configmap["metadata"]["name"],
            "--format",
            "{{.Mountpoint}}",
        ).stdout.strip()
        staged = Path(volume) / ".desired-model.json.new"
        staged.write_text(_record(base, root, "2").model_dump_json())
        os.replace(staged, Path(volume) / "desired-model.json")
        _wait(
            lambda: (
                httpx.get(f"{url}/v2/models/edge-model").json()["versions"] == ["2"]
            ),
            60,
            "the agent to switch to v2",
        )
        after = json.loads(podman("inspect", container).stdout)[0]
        assert after["State"]["StartedAt"] == started and after["RestartCount"] == 0
        assert (
            httpx.post(
                f"{url}/predict",
                json={"readings": [{"entity": "p1", "values": SENSORS}]},
            ).status_code
            == 200
        )
    finally:
        podman("kube", "down", str(play), check=False)
        for volume in (configmap["metadata"]["name"], "state", "tmp"):
            podman("volume", "rm", "-f", volume, check=False)
        stack.close()
