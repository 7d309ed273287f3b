"""The loop closes as installed: every control-plane part started from ``helm template``.

MLflow server (artifact proxy, artifacts in S3), intake and loop service run
with the command, environment, config files and secret files the chart renders
for them; the controller runs ``edgeloop controller run`` with the controller
Deployment's environment (kopf needs a Kubernetes API server, which cannot run
here) and a local sink. Two real agents fetch bundles by URL. Nothing is wired
in-process: drift injected at one site -> the loop service's trigger ->
retraining on data in object storage -> gated v2 -> the EdgeRollout follows
the alias -> agents serve v2 -> lineage from v2 back to the drift reports.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

import httpx
import pandas as pd
import pytest
import yaml

from edgeloop.demo import stream
from edgeloop.demo.fleet_ops import serving
from edgeloop.demo.processes import AgentSpec, agent

from ..s3_server import CREDENTIALS, s3_server
from .rendered import BIN, Cluster, helm_template

pytestmark = [pytest.mark.slow, pytest.mark.installed]
BUCKET = "edgeloop"
SITES = {"offshore-01": "offshore-01-gw1", "desert-02": "desert-02-gw1"}
# readings per drift window: a day of a node's 4 pumps (half-day windows see
# day and night as drift of their own: ambient wobbles more than it shifts)
WINDOW = 576
ROLLOUT = {
    "apiVersion": "edgeloop.io/v1alpha1",
    "kind": "EdgeRollout",
    "metadata": {"name": "pumps", "namespace": "edgeloop"},
    "spec": {
        "model": {"name": "pump-failure", "alias": "champion"},
        "runtime": {"image": "ghcr.io/edgeloop/edgeloop-agent:0.1.0"},
        "groups": [
            {"name": "offshore", "nodes": ["offshore-01-gw1"]},
            {"name": "desert", "nodes": ["desert-02-gw1"]},
        ],
        "waves": [
            {
                "name": "all",
                "groups": ["offshore", "desert"],
                "gates": {"soakSeconds": 1, "maxP99LatencyMs": 5000},
            }
        ],
    },
}


def values(s3_url: str, reader_token: str = "") -> dict:
    """What an operator sets on top of the quickstart (docs/install.md)."""
    return {
        "s3": {"endpointUrl": s3_url},
        "mlflowServer": {"artifactsDestination": f"s3://{BUCKET}/mlflow"},
        "loop": {
            "intervalSeconds": 2,
            "baseDataset": "",
            "datasetUri": f"s3://{BUCKET}/datasets/pumps/",
            "policy": {
                "drift_share": 0.05,
                "node_fraction": 0.5,
                "consecutive": 1,
                "window_s": 86400,
                "cooldown_s": 3600,
            },
        },
        "secrets": {
            "readerToken": reader_token,
            "s3AccessKeyId": CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "s3SecretAccessKey": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        },
    }


def wait(predicate, what: str, cluster: Cluster, logs: list[str], timeout=300.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    tails = "\n".join(f"--- {n}:\n{cluster.log(n)}" for n in logs)
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


@pytest.mark.timeout(1500)
def test_the_installed_control_plane_closes_the_loop(tmp_path, fleet_dir):
    with ExitStack() as stack:
        s3 = stack.enter_context(s3_server(tmp_path))
        fs = s3.filesystem()
        fs.mkdir(BUCKET)
        fs.put(str(fleet_dir) + "/", f"{BUCKET}/datasets/pumps/", recursive=True)

        # -- install: MLflow and the intake, from the rendered chart ----------
        cluster = Cluster(helm_template(values(s3.url), tmp_path), tmp_path / "cluster")
        stack.callback(cluster.stop)
        mlflow = cluster.url("edgeloop-mlflow", 5000)
        intake = cluster.url("edgeloop-intake", 8000)
        cluster.start("edgeloop-mlflow")
        cluster.start("edgeloop-intake")
        cluster.wait_http(f"{mlflow}/health", "edgeloop-mlflow")
        cluster.wait_http(f"{intake}/healthz", "edgeloop-intake")

        # the reader token, made inside the intake "pod", then set as a value
        reader = cluster.exec(
            "edgeloop-intake", "intake", "token", "create", "controller", "--reader"
        )["token"]
        tokens = {
            node: cluster.exec(
                "edgeloop-intake", "intake", "token", "create", node, "--site", site
            )["token"]
            for site, node in SITES.items()
        }
        cluster.docs = helm_template(values(s3.url, reader), tmp_path)

        # -- the first model, trained from object storage into the chart's MLflow
        user = {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": s3.url,
            "EDGELOOP_REGISTRY__TRACKING_URI": mlflow,
            "EDGELOOP_HOME": str(tmp_path / "user"),
        }
        first = cluster.run_user(
            user, "pipeline", "run", "--data", f"s3://{BUCKET}/datasets/pumps/"
        )
        assert first["version"] == 1 and first["promoted"], first

        # -- the loop service and the controller, from the rendered chart -----
        cluster.start("edgeloop-loop")
        rollouts = tmp_path / "rollouts"
        rollouts.mkdir()
        (rollouts / "pumps.yaml").write_text(yaml.safe_dump(ROLLOUT))
        agents_home = tmp_path / "agents"
        cluster.start(
            "edgeloop-controller",
            argv=[
                str(BIN / "edgeloop"),
                "controller",
                "run",
                "--rollouts",
                str(rollouts),
                "--sink",
                "local",
                "--nodes-dir",
                str(agents_home / "edge"),
                "--interval",
                "1",
            ],
        )
        agents = {
            node: stack.enter_context(
                agent(
                    agents_home,
                    AgentSpec(
                        node=node,
                        site=site,
                        token=tokens[node],
                        intake_url=intake,
                        window_readings=WINDOW,
                    ),
                )
            )
            for site, node in SITES.items()
        }
        client = stack.enter_context(httpx.Client(timeout=60))
        logs = ["edgeloop-controller", "edgeloop-loop", "edgeloop-intake"]
        wait(
            lambda: all(serving(client, u) == "1" for u in agents.values()),
            "agents to serve v1 (bundle fetched by URL from the MLflow proxy)",
            cluster,
            logs,
        )
        desired = (
            agents_home / "edge" / "desert-02-gw1" / "desired-model.json"
        ).read_text()
        assert f'"bundle_uri":"{mlflow}/api/2.0/mlflow-artifacts/artifacts/' in desired

        # -- drift at one site: its ambient temperature rises 12 degC ---------
        readings = pd.read_parquet(fleet_dir / "readings.parquet")
        # three days build each node's baseline, then three drifted days
        days = sorted(readings["timestamp"].dt.floor("D").unique())[-6:]
        for i, day in enumerate(days):
            for site, node in SITES.items():
                today = readings[
                    (readings["timestamp"].dt.floor("D") == day)
                    & readings["pump_id"].str.startswith(site)
                ].copy()
                if site == "desert-02" and i >= 3:
                    today["ambient_temp"] += 12.0
                stream.send_http(client, agents[node], stream.payloads(today))
        wait(
            lambda: any(
                r["state"] == "succeeded"
                for r in cluster.exec("edgeloop-loop", "loop", "status")["runs"]
            ),
            "the loop service to retrain after the drift trigger",
            cluster,
            logs,
            timeout=600,
        )
        (run,) = cluster.exec("edgeloop-loop", "loop", "status")["runs"]
        assert run["trigger"].startswith("drift: cohort desert-02"), run
        assert run["outcome"] == "pump-failure:2", run
        wait(
            lambda: all(serving(client, u) == "2" for u in agents.values()),
            "agents to serve v2 (the rollout follows the champion alias)",
            cluster,
            logs,
        )

        # -- lineage: v2 <- retraining <- drift trigger <- drift reports -------
        lineage = cluster.exec("edgeloop-loop", "models", "lineage", "pump-failure:2")
        (training,) = lineage["training"]
        trigger = training["trigger"]
        assert trigger["kind"] == "drift" and trigger["cohort"] == "desert-02"
        reports = trigger["evidence"]["reports"]
        assert reports and all(r.startswith("desert-02-gw1:") for r in reports)
        v1 = cluster.exec("edgeloop-loop", "models", "lineage", "pump-failure:1")
        assert set(reports) <= set(v1["fleet"]["drifted_reports"])
        assert lineage["data"]["dataset_uri"] == f"s3://{BUCKET}/datasets/pumps/"
