"""Two-wave rollouts through the local sink to real agents, with an automatic rollback."""

from __future__ import annotations

import json
import shutil
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from edgeloop.provenance.registry import Registry
from edgeloop.rollout.controller import Reconciler, load_rollout
from edgeloop.rollout.fleet import AgentProbe
from edgeloop.rollout.registry_view import registry_view
from edgeloop.rollout.sinks import LocalSink
from edgeloop_agent.api.app import create_app
from edgeloop_agent.contracts import MANIFEST_FILE
from edgeloop_components import tasks

from ..conftest import free_port
from ..servers import serve_app
from .test_agent_http import SENSORS, settings_for, wait_for

pytestmark = pytest.mark.slow
NODES = ["n1", "n2", "n3", "n4"]

ROLLOUT = """
apiVersion: edgeloop.io/v1alpha1
kind: EdgeRollout
metadata: {name: pumps, namespace: edgeloop}
spec:
  model: {name: pump-failure, alias: champion}
  runtime: {image: "ghcr.io/edgeloop/edgeloop-agent:0.1.0"}
  platform: kubeedge
  groups:
    - {name: canary, nodes: [n1], deviceProfile: gateway-small}
    - {name: fleet, nodes: [n2, n3, n4], deviceProfile: gateway-small}
  waves:
    - {name: canary, groups: [canary], gates: {soakSeconds: 0, maxErrorRate: 0.2}}
    - {name: fleet, groups: [fleet], gates: {soakSeconds: 0}}
"""


def register_variant(source: Path, work: Path, uri: str, tag: str) -> int:
    """Register the same model under a new manifest: a new version, promoted."""
    bundle = work / tag
    shutil.copytree(source, bundle)
    data = json.loads((bundle / MANIFEST_FILE).read_text())
    data["lineage"]["pipeline_run_id"] = tag
    data["lineage"]["parent_champion"] = ""
    (bundle / MANIFEST_FILE).write_text(json.dumps(data))
    return int(tasks.register_bundle(bundle, uri, True, True, {})["version"])


def versions(urls: dict[str, str]) -> dict[str, str]:
    out = {}
    for node, url in urls.items():
        r = httpx.get(f"{url}/v2/models/edge-model")
        out[node] = r.json()["versions"][0] if r.status_code == 200 else ""
    return out


def test_waves_advance_then_a_failing_canary_rolls_back(
    registry_with_champion, tmp_path
):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    shutil.copyfile(
        registry_with_champion["root"] / "mlflow.db", tmp_path / "mlflow.db"
    )
    registry = Registry(uri)
    source = registry_with_champion["run"].bundle_dir
    (tmp_path / "pumps.yaml").write_text(ROLLOUT)
    nodes_dir = tmp_path / "nodes"

    with ExitStack() as stack:
        urls = {}
        for node in NODES:
            settings = settings_for(tmp_path / node)
            settings.node.id = node
            settings.model.desired_model_path = nodes_dir / node / "desired-model.json"
            urls[node] = stack.enter_context(
                serve_app(create_app(settings), free_port(), lifespan="on")
            )
        reconciler = Reconciler(
            registry_view=lambda r: registry_view(registry, r),
            fleet=AgentProbe(urls),
            sink=LocalSink(nodes_dir),
        )
        rollout = load_rollout(tmp_path / "pumps.yaml")

        def reconcile_until(predicate, what):
            nonlocal rollout
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                rollout = reconciler.reconcile(rollout).rollout
                if predicate(rollout):
                    return
                time.sleep(0.2)
            raise AssertionError(
                f"timed out waiting for {what}; history: {rollout.status.history[-3:]}"
            )

        # v1, first rollout: canary first, the fleet only after the canary passed.
        rollout = reconciler.reconcile(rollout).rollout
        assert rollout.status.wave == "canary"
        wait_for(lambda: versions(urls)["n1"] == "1", what="canary on v1")
        assert versions(urls) == {"n1": "1", "n2": "", "n3": "", "n4": ""}
        reconcile_until(lambda r: r.status.phase == "Succeeded", "v1 everywhere")
        assert set(versions(urls).values()) == {"1"}

        # v2: becomes champion, rolls out in two waves; v1 becomes last-known-good.
        assert register_variant(source, tmp_path, uri, "v2") == 2
        rollout = reconciler.reconcile(rollout).rollout
        assert (
            rollout.status.modelVersion == "2" and rollout.status.lastKnownGood == "1"
        )
        wait_for(lambda: versions(urls)["n1"] == "2", what="canary on v2")
        assert versions(urls)["n2"] == "1"
        reconcile_until(lambda r: r.status.phase == "Succeeded", "v2 everywhere")
        wait_for(lambda: set(versions(urls).values()) == {"2"}, what="fleet on v2")

        # v3: the canary takes it, then fails its error-rate gate -> automatic rollback to v2.
        assert register_variant(source, tmp_path, uri, "v3") == 3
        rollout = reconciler.reconcile(rollout).rollout
        assert rollout.status.lastKnownGood == "2"
        wait_for(lambda: versions(urls)["n1"] == "3", what="canary on v3")
        canary = urls["n1"]
        for _ in range(10):
            httpx.post(
                f"{canary}/predict",
                json={"readings": [{"entity": "p", "values": SENSORS}]},
            )
        for _ in range(30):
            httpx.post(
                f"{canary}/predict",
                json={"readings": [{"entity": "p", "values": {"bad": 1}}]},
            )
        reconcile_until(lambda r: r.status.phase == "RolledBack", "automatic rollback")
        last = rollout.status.history[-1]
        assert (
            last.action == "rollback"
            and "unhealthy" in last.reason
            and "back to 2" in last.reason
        )
        wait_for(lambda: versions(urls)["n1"] == "2", what="canary back on v2")
        assert set(versions(urls).values()) == {"2"}, (
            "the fleet never left the last-known-good version"
        )
        desired = json.loads((nodes_dir / "n3" / "desired-model.json").read_text())
        assert desired["version"] == "2" and desired["rollout"] == "pumps"
