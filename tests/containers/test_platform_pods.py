"""The chart's intake and a rendered agent, both as pods, talking by Service name.

The intake Deployment (and its PVC) come from ``helm template`` of the chart,
with the platform image built from this repo and referred to by digest
(``image.digest``). The agent comes from the rollout renderer. The agent's
intake URL is the chart's Service name, which the pod resolves to 127.0.0.1
through a mounted ``/etc/hosts`` (what cluster DNS does in a cluster; podman
4.3's ``kube play`` ignores ``hostAliases``). Podman adaptations are
the ones named in :func:`as_host_pod` / ``as_podman_pod``; nothing else of the
rendered objects changes.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from ..conftest import free_port
from .conftest import ROOT, build_and_push, podman
from .test_agent_pod import NODE, _deployment, _record, _rendered, _wait, as_podman_pod

# generous: the first run builds the images (the platform image takes minutes)
pytestmark = [pytest.mark.containers, pytest.mark.slow, pytest.mark.timeout(1200)]
SERVICE = "edgeloop-intake.edgeloop.svc"


@pytest.fixture(scope="module")
def platform_image(oci_registry: str) -> str:
    return build_and_push("platform", oci_registry)


def chart(platform_image: str) -> list[dict[str, Any]]:
    repository, digest = platform_image.split("@")
    helm = Path(ROOT / ".venv" / "bin" / "helm")
    out = subprocess.run(
        [
            str(helm),
            "template",
            "edgeloop",
            str(ROOT / "helm" / "edgeloop"),
            "--set",
            f"image.repository={repository}",
            "--set",
            f"image.digest={digest}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def as_host_pod(
    deployment: dict[str, Any], port: int, configmaps: dict[str, dict[str, str]]
) -> dict[str, Any]:
    """The chart's Deployment on the host network, serving on loopback.

    With ``hostNetwork`` the container's ``--host 0.0.0.0 --port 8000`` would
    listen on every interface of the machine: it serves on 127.0.0.1 and a
    free port instead; ports and probes follow (see ``as_podman_pod``).
    """
    out = copy.deepcopy(deployment)
    pod = out["spec"]["template"]["spec"]
    pod["hostNetwork"] = True
    # podman 4.3 plays hostPath, configMap, emptyDir and PVC volumes only: the
    # projected secrets volume (no Secret is set in this test) becomes empty
    pod["volumes"] = [
        {"name": v["name"], "emptyDir": {}} if "projected" in v else v
        for v in pod["volumes"]
    ]
    # ... and it needs ConfigMaps given separately: envFrom becomes plain env,
    # the values a kubelet would have read from the chart's ConfigMap
    for container in pod["containers"]:
        for source in container.pop("envFrom", []):
            data = configmaps[source["configMapRef"]["name"]]
            container["env"] = [
                {"name": k, "value": v} for k, v in data.items()
            ] + container.get("env", [])
    (container,) = pod["containers"]
    container.pop("ports")
    command = container["command"]
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    for probe in ("livenessProbe", "readinessProbe"):
        container[probe]["httpGet"]["port"] = port
    return out


def test_the_push_writes_overlays_that_install_the_platform_by_digest(
    platform_image: str,
) -> None:
    kubectl = ROOT / ".venv" / "bin" / "kubectl"
    for overlay in ("dev", "k3s", "kubeedge"):
        path = ROOT / "build" / "images" / "overlays" / overlay
        hydrated = subprocess.run(
            [str(kubectl), "kustomize", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        images = {
            container["image"]
            for doc in yaml.safe_load_all(hydrated)
            if doc and doc["kind"] == "Deployment"
            for container in doc["spec"]["template"]["spec"]["containers"]
        }
        assert images == {platform_image}, overlay


def test_a_rendered_agent_reports_to_the_charts_intake_by_service_name(
    platform_image, agent_image, bundle_server, tmp_path
):
    objects = chart(platform_image)
    intake = next(
        o
        for o in objects
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "edgeloop-intake"
    )
    assert (
        intake["spec"]["template"]["spec"]["containers"][0]["image"] == platform_image
    )
    pvc = next(o for o in objects if o["kind"] == "PersistentVolumeClaim")
    intake_port = free_port()
    intake_yaml = tmp_path / "intake.yaml"
    configmaps = {
        o["metadata"]["name"]: o.get("data", {})
        for o in objects
        if o["kind"] == "ConfigMap"
    }
    intake_yaml.write_text(
        yaml.safe_dump_all([pvc, as_host_pod(intake, intake_port, configmaps)])
    )
    intake_url = f"http://127.0.0.1:{intake_port}"
    agent_yaml = tmp_path / "agent.yaml"
    try:
        podman("kube", "play", "--tls-verify=false", str(intake_yaml))
        _wait(
            lambda: httpx.get(f"{intake_url}/healthz").status_code == 200,
            120,
            "the chart's intake to become healthy",
        )
        container = "edgeloop-intake-pod-0-intake"
        info = json.loads(podman("inspect", container).stdout)[0]
        assert info["Config"]["User"] == "10001:10001"
        assert info["HostConfig"]["ReadonlyRootfs"] is True
        # a node token, issued by the intake's own CLI inside its pod
        issued = podman(
            "exec",
            container,
            "edgeloop",
            "-o",
            "json",
            "intake",
            "token",
            "create",
            NODE,
        )
        token = json.loads(issued.stdout)["token"]
        reader = json.loads(
            podman(
                "exec",
                container,
                "edgeloop",
                "-o",
                "json",
                "intake",
                "token",
                "create",
                "dashboards",
                "--reader",
            ).stdout
        )["token"]
        as_reader = {"Authorization": f"Bearer {reader}"}

        base, root = bundle_server
        port = free_port()
        objects = _rendered(
            "k3s",
            agent_image,
            port,
            _record(base, root, "1"),
            intake_url=f"http://{SERVICE}:{intake_port}",
            extra_env={
                "EDGELOOP_AGENT_OUTBOX__TOKEN": token,
                "EDGELOOP_AGENT_OUTBOX__HEARTBEAT_INTERVAL_S": "1",
            },
        )
        configmap = next(o for o in objects if o["kind"] == "ConfigMap")
        agent = as_podman_pod(_deployment(objects, "k3s"), port)
        hosts = tmp_path / "hosts"
        hosts.write_text(f"127.0.0.1 localhost\n127.0.0.1 {SERVICE}\n")
        pod = agent["spec"]["template"]["spec"]
        pod["volumes"].append(
            {"name": "dns", "hostPath": {"path": str(hosts), "type": "File"}}
        )
        pod["containers"][0]["volumeMounts"].append(
            {"name": "dns", "mountPath": "/etc/hosts", "readOnly": True}
        )
        agent_yaml.write_text(yaml.safe_dump_all([configmap, agent]))
        podman("kube", "play", "--tls-verify=false", "--no-hosts", str(agent_yaml))

        def on_v1() -> bool:
            fleet = httpx.get(f"{intake_url}/v1/fleet", headers=as_reader).json()
            return any(n["node"] == NODE and n["active_version"] == "1" for n in fleet)

        try:
            _wait(
                on_v1, 90, "the agent's heartbeat to reach the intake by Service name"
            )
        except AssertionError:
            logs = podman("logs", "pumps-canary-agent-pod-0-agent", check=False)
            fleet = httpx.get(f"{intake_url}/v1/fleet", headers=as_reader).text
            raise AssertionError(
                f"no heartbeat on v1 at the intake: fleet {fleet}; agent log: "
                f"{(logs.stdout + logs.stderr)[-1500:]}"
            ) from None
    finally:
        for play in (agent_yaml, intake_yaml):
            if play.exists():
                podman("kube", "down", str(play), check=False)
        for volume in (
            "edgeloop-intake-data",
            "pumps-canary-desired-model",
            "state",
            "tmp",
        ):
            podman("volume", "rm", "-f", volume, check=False)
