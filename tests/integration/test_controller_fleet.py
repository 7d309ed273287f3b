"""The controller sees the fleet through a real intake, and its drift gate is fed.

Before: the operator had no fleet source but a mounted file (every wave held
forever in a cluster), ``rollout plan/apply`` had no ``--intake``, and the drift
gate's baseline (``previous_drifted_share``) was only ever set by a unit test.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.core.errors import PermanentError
from edgeloop.core.settings import PlatformSettings
from edgeloop.monitor.intake.app import create_app
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop.rollout.controller import Reconciler
from edgeloop.rollout.fleet import IntakeFleet
from edgeloop.rollout.plan import RegistryView
from edgeloop.rollout.spec import EdgeRollout
from edgeloop_agent.contracts import DriftWindow, FeatureWindow, Heartbeat, Report

from ..conftest import free_port
from ..servers import serve_app
from ..unit.platform.rollout.test_cli_and_sinks import ROLLOUT, files  # noqa: F401
from ..unit.platform.rollout.test_plan import desired, latency


def now() -> datetime:
    """The time of the call, not of collection: in CI the suite starts ~45 min
    before these tests run, and a heartbeat that old is a silent node."""
    return datetime.now(UTC).replace(microsecond=0)


def drift(node: str, version: str, i: int, share: float) -> Report:
    end = now() - timedelta(minutes=60 - 5 * i)
    return Report(
        key=f"{node}:drift:{version}:{i}",
        node=node,
        created_at=end,
        body=DriftWindow(
            site="desert",
            model_name="pump-failure",
            model_version=version,
            window_start=end - timedelta(minutes=5),
            window_end=end,
            rows=100,
            features=(FeatureWindow(name="f", counts=(50, 50), psi=share),),
            psi_threshold=0.2,
            drifted_share=share,
        ),
    )


def heartbeat(node: str, version: str) -> Report:
    return Report(
        key=f"{node}:heartbeat:{version}",
        node=node,
        created_at=now(),
        body=Heartbeat(
            site="desert",
            model_version=version,
            requests=100,
            errors=0,
            outbox_depth=0,
            uptime_s=60,
        ),
    )


@pytest.fixture()
def intake(tmp_path):
    settings = PlatformSettings(home=tmp_path / "home")
    store = IntakeStore.from_settings(settings)
    reader = store.create_token("controller", role="reader")
    with serve_app(create_app(settings, store), free_port()) as url:
        yield url, store, reader


def test_drift_per_node_and_version_is_served_to_readers_only(intake):
    url, store, reader = intake
    store.accept(
        [
            drift("n1", "1", 0, 0.4),
            drift("n1", "1", 1, 0.1),  # the latest window on v1 counts
            drift("n2", "1", 0, 0.2),
            drift("n1", "2", 2, 0.9),
        ]
    )
    headers = {"Authorization": f"Bearer {reader}"}
    body = httpx.get(f"{url}/v1/drift", params={"version": "1"}, headers=headers)
    assert body.status_code == 200
    assert body.json() == {"version": "1", "nodes": {"n1": 0.1, "n2": 0.2}}
    assert IntakeFleet(url, token=reader).drift_by_node("2") == {"n1": 0.9}
    assert httpx.get(f"{url}/v1/drift", params={"version": "1"}).status_code == 401
    missing = httpx.get(f"{url}/v1/drift", headers=headers)
    assert missing.status_code == 422 and "version" in missing.text


def test_the_drift_gate_compares_the_same_nodes_on_both_versions(intake):
    """v2 makes the canary nodes drift far more than v1 did: the wave fails and
    the rollout goes back to v1, decided from the intake's data alone."""
    url, store, reader = intake
    store.accept([drift("n1", "1", 0, 0.05), drift("n2", "1", 0, 0.1)])
    store.accept([drift("n3", "1", 0, 0.9)])  # another site, never in this wave
    store.accept([heartbeat("n1", "2"), heartbeat("n2", "2")])
    store.accept([drift("n1", "2", 1, 0.6), drift("n2", "2", 1, 0.5)])
    rollout = EdgeRollout.model_validate(
        {
            "metadata": {"name": "pumps"},
            "spec": {
                "model": {"name": "pump-failure", "alias": "champion"},
                "runtime": {"image": "ghcr.io/edgeloop/edgeloop-agent:0.1.0"},
                "groups": [{"name": "canary", "nodes": ["n1", "n2"]}],
                "waves": [{"name": "canary", "groups": ["canary"]}],
            },
            "status": {"modelVersion": "1", "phase": "Succeeded"},
        }
    )
    view = RegistryView(desired("2", lkg=desired("1")), latency=[latency()])
    reconciler = Reconciler(
        registry_view=lambda r: view, fleet=IntakeFleet(url, token=reader), sink=None
    )
    outcome = reconciler.reconcile(rollout, dry_run=True)
    gate = next(g for g in outcome.plan.gates if g.name == "drift")
    # 0.55 now vs 0.075 on v1 for n1+n2 (n3's 0.9 on v1 is not part of the wave;
    # a fleet-wide mean would have been 0.35 and let the wave pass)
    assert not gate.passed and "0.55 vs previous 0.08" in gate.detail
    assert outcome.rollout.status.phase == "RolledBack"


def test_rollout_plan_reads_the_fleet_from_the_intake(
    intake,
    files,  # noqa: F811
    monkeypatch,
):
    url, store, reader = intake
    store.accept([heartbeat("n1", "1"), heartbeat("n2", "1")])
    monkeypatch.setenv("EDGELOOP_INTAKE__READER_TOKEN", reader)
    args = ["-o", "json", "rollout", "plan", "-f", str(files / "pumps.yaml")]
    result = CliRunner().invoke(app, [*args, "--intake", url])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    canary = plan["waves"][0]
    assert canary["nodes"] == ["n1"] and plan["model"] == "pump-failure:1"
    # n1 reports through the intake: not silent (a fleet-less controller saw nothing)
    silent = next(g for g in plan["gates"] if g["gate"] == "silent")
    assert silent["passed"] and silent["detail"].startswith("0 of 1 nodes silent")
    # labels come from the intake too: site=desert puts n2 in the fleet wave
    assert "n2" in plan["waves"][1]["nodes"] and plan["wave"] == "fleet"

    # the same through the setting the chart sets
    monkeypatch.setenv("EDGELOOP_INTAKE__URL", url)
    assert CliRunner().invoke(app, args).exit_code == 0

    monkeypatch.setenv("EDGELOOP_INTAKE__READER_TOKEN", "not-a-token")
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1
    assert "refused to show the fleet (HTTP 401)" in refused.stderr

    bad = CliRunner().invoke(app, [*args, "--intake", "intake:8000"])
    assert bad.exit_code != 0 and "expected an http(s):// URL" in bad.stderr


def test_a_rollout_to_a_cluster_refuses_a_bundle_path_no_node_can_fetch(
    files,  # noqa: F811
    tmp_path,
):
    """The embedded registry keeps bundles on this disk: fine for node files,
    refused for a GitOps repository (nodes in a cluster would retry forever)."""
    import subprocess

    repo = tmp_path / "gitops"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (files / "fleet.yaml").write_text(yaml.safe_dump({"nodes": []}))
    result = CliRunner().invoke(
        app,
        [
            "rollout",
            "apply",
            "-f",
            str(files / "pumps.yaml"),
            "--fleet",
            str(files / "fleet.yaml"),
            "--sink",
            "gitops",
            "--repo",
            str(repo),
        ],
    )
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "which no edge node can fetch" in result.stderr
    assert "--serve-artifacts" in result.stderr
    assert not list((repo).glob("edgeloop/*")), "nothing may be written"
    local = CliRunner().invoke(
        app,
        [
            "rollout",
            "apply",
            "-f",
            str(files / "pumps.yaml"),
            "--fleet",
            str(files / "fleet.yaml"),
            "--nodes-dir",
            str(tmp_path / "nodes"),
        ],
    )
    assert local.exit_code == 0, local.output


def test_unreachable_intake_is_retryable_and_named():
    from edgeloop.core.errors import RetryableError

    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RetryableError, match=f"intake {dead} unreachable"):
        IntakeFleet(dead).observe()
    assert not issubclass(RetryableError, PermanentError)
    _ = ROLLOUT
