import os
from pathlib import Path

import jsonschema
import pytest
import yaml

from edgeloop.rollout import crd, pod_security, validate
from edgeloop.rollout.render.group import GroupRender, render_group
from edgeloop.rollout.render.yaml import dump_all
from edgeloop.rollout.spec import EdgeRollout
from edgeloop_agent.contracts import DesiredModel

ROOT = Path(__file__).resolve().parents[4]
GOLDEN = ROOT / "tests" / "golden" / "rollout"
UPDATE = os.environ.get("EDGELOOP_UPDATE_GOLDEN") == "1"
SAMPLE = ROOT / "manifests" / "samples" / "edgerollout-pumps.yaml"

ROLLOUT = EdgeRollout.model_validate(
    {
        "metadata": {"name": "pumps", "namespace": "edgeloop"},
        "spec": {
            "model": {"name": "pump-failure", "alias": "champion"},
            "runtime": {
                "image": "ghcr.io/edgeloop/edgeloop-agent:0.1.0",
                "threads": 1,
                "env": {
                    "EDGELOOP_AGENT_OUTBOX__INTAKE_URL": "http://edgeloop-intake.edgeloop:8000"
                },
            },
            "groups": [
                {
                    "name": "canary",
                    "nodes": ["edge-offshore-1", "edge-offshore-2"],
                    "site": "offshore-01",
                },
                {
                    "name": "desert",
                    "matchLabels": {"edgeloop.io/site": "desert-02"},
                    "site": "desert-02",
                },
            ],
            "waves": [
                {"name": "canary", "groups": ["canary"]},
                {"name": "desert", "groups": ["desert"]},
            ],
        },
    }
)
DESIRED = DesiredModel(
    model_name="pump-failure",
    version="3",
    bundle_uri="http://mlflow.edgeloop:5000/api/2.0/mlflow-artifacts/artifacts/1/run/artifacts/bundle",
    bundle_sha256="b" * 64,
)


def rendered(platform: str, group: int) -> list[dict]:
    spec = ROLLOUT.spec.model_copy(update={"platform": platform})
    return render_group(
        GroupRender(
            "pumps", "edgeloop", spec, spec.groups[group], DESIRED, 2, prepull=True
        )
    )


@pytest.mark.parametrize("platform", ["kubeedge", "k3s"])
@pytest.mark.parametrize("group", [0, 1])
def test_rendered_manifests_match_golden_files_and_validate(platform, group):
    objects = rendered(platform, group)
    validate.validate_all(objects)
    text = dump_all(objects)
    path = GOLDEN / f"{platform}-{ROLLOUT.spec.groups[group].name}.yaml"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), (
        f"run with EDGELOOP_UPDATE_GOLDEN=1 to accept changes to {path.name}"
    )


def test_rendering_is_deterministic():
    assert dump_all(rendered("kubeedge", 0)) == dump_all(rendered("kubeedge", 0))


def test_kubeedge_agent_is_offline_autonomous_edge_only_and_locked_down():
    eapp = next(o for o in rendered("kubeedge", 0) if o["kind"] == "EdgeApplication")
    deployment = eapp["spec"]["workloadTemplate"]["manifests"][0]
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["app-offline.kubeedge.io"] == "autonomy"
    assert pod["spec"]["nodeSelector"] == {"node-role.kubernetes.io/edge": ""}
    container = pod["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert (
        eapp["spec"]["workloadScope"]["targetNodeGroups"][0]["name"] == "pumps-canary"
    )
    node_group = next(o for o in rendered("kubeedge", 0) if o["kind"] == "NodeGroup")
    assert node_group["spec"]["nodes"] == ["edge-offshore-1", "edge-offshore-2"]


def test_desired_model_configmap_is_what_the_agent_reads():
    cm = rendered("k3s", 0)[0]
    record = DesiredModel.model_validate_json(cm["data"]["desired-model.json"])
    assert record == DESIRED


def test_invalid_objects_are_caught_before_they_leave():
    objects = rendered("kubeedge", 0)
    eapp = next(o for o in objects if o["kind"] == "EdgeApplication")
    eapp["spec"]["workloadScope"]["targetNodeGroups"][0]["overriders"]["replicas"] = (
        "two"
    )
    with pytest.raises(
        validate.InvalidManifest, match="replicas: 'two' is not of type 'integer'"
    ):
        validate.validate_all(objects)
    deployment = rendered("k3s", 0)[1]
    deployment["spec"]["template"]["spec"]["containers"][0]["bogus"] = 1
    with pytest.raises(validate.InvalidManifest, match="Deployment/pumps-canary-agent"):
        validate.validate(deployment)


def test_crd_file_is_generated_from_the_models_and_validates_instances():
    path = ROOT / crd.CRD_PATH
    assert path.read_text() == crd.render(), "run: python -m edgeloop.rollout.crd"
    import kubernetes_validate

    kubernetes_validate.validate(crd.crd(), "1.33.0", strict=True)
    schema = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    instance = ROLLOUT.model_dump(mode="json", exclude_none=True)
    jsonschema.Draft7Validator(schema).validate(instance)
    bad = {
        **instance,
        "spec": {**instance["spec"], "waves": [{"name": "w", "percent": "half"}]},
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(bad)


def test_golden_files_are_valid_yaml_streams():
    for path in GOLDEN.glob("*.yaml"):
        assert all(
            doc["metadata"]["name"] for doc in yaml.safe_load_all(path.read_text())
        )


def test_sample_rollout_is_valid_against_models_and_crd():
    import jsonschema
    import yaml as _yaml

    from edgeloop.rollout.controller import load_rollout

    sample = ROOT / "manifests" / "samples" / "edgerollout-pumps.yaml"
    rollout = load_rollout(sample)
    assert [w.name for w in rollout.spec.waves] == ["canary", "desert", "rest"]
    schema = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    jsonschema.Draft7Validator(schema).validate(_yaml.safe_load(sample.read_text()))


def test_agent_state_is_an_emptydir_the_non_root_agent_can_write_by_default():
    # hostPath is created root-owned by the kubelet: the agent (uid 10001)
    # could not open its outbox there (found running the rendered pod)
    pod = rendered("k3s", 0)[1]["spec"]["template"]["spec"]
    state = next(v for v in pod["volumes"] if v["name"] == "state")
    assert state == {"name": "state", "emptyDir": {"sizeLimit": "1Gi"}}
    assert pod["securityContext"]["fsGroup"] == 10001


def test_a_hostpath_state_is_opt_in_and_must_exist_on_the_node():
    runtime = ROLLOUT.spec.runtime.model_copy(
        update={"stateVolume": "hostPath", "podSecurity": "privileged"}
    )
    spec = ROLLOUT.spec.model_copy(update={"platform": "k3s", "runtime": runtime})
    objects = render_group(
        GroupRender("pumps", "edgeloop", spec, spec.groups[0], DESIRED, 2)
    )
    pod = objects[1]["spec"]["template"]["spec"]
    state = next(v for v in pod["volumes"] if v["name"] == "state")
    assert state["hostPath"] == {"path": "/var/lib/edgeloop/pumps", "type": "Directory"}
    validate.validate_all(objects)


@pytest.mark.parametrize("platform", ["k3s", "kubeedge"])
def test_every_rendered_pod_passes_the_restricted_pod_security_level(platform):
    """Before: agent pods used hostPath, which the chart's restricted namespace refuses."""
    templates = []
    for i in range(len(ROLLOUT.spec.groups)):
        templates += pod_security.pod_templates(rendered(platform, i))
    assert templates  # the Deployment (in the EdgeApplication on KubeEdge)
    for where, pod in templates:
        assert pod_security.violations(pod, "restricted") == [], where


def test_the_check_catches_what_restricted_forbids():
    pod = rendered("k3s", 0)[1]["spec"]["template"]["spec"]
    bad = {
        **pod,
        "hostNetwork": True,
        "volumes": [*pod["volumes"], {"name": "h", "hostPath": {"path": "/"}}],
        "containers": [{**pod["containers"][0], "securityContext": {}}],
    }
    found = pod_security.violations(bad, "restricted")
    assert "spec.hostNetwork is true" in found
    assert "volume 'h' is a hostPath" in found
    assert "container 'agent' does not drop ALL capabilities" in found
    assert pod_security.violations(bad, "privileged") == []


def test_a_hostpath_state_at_a_restricted_level_is_refused_with_what_to_do():
    doc = yaml.safe_load(SAMPLE.read_text())
    doc["spec"]["runtime"]["stateVolume"] = "hostPath"
    with pytest.raises(
        ValueError,
        match="stateVolume hostPath is refused at Pod Security level 'restricted'",
    ):
        EdgeRollout.model_validate(doc)
    doc["spec"]["runtime"]["podSecurity"] = "privileged"
    assert EdgeRollout.model_validate(doc).spec.runtime.stateVolume == "hostPath"
