"""Names from EdgeRollouts and fleets never become paths outside a sink's root.

A rollout named ``..`` used to make the GitOps sink delete the repository's
work tree (``.git`` included); a node named ``../../x`` was written outside
``--nodes-dir``; a namespace ``../../y`` put the status file outside the
status directory. Names are DNS-1123 at the model boundary, and each sink
resolves its paths and refuses anything outside its root.
"""

import subprocess

import pytest
import yaml
from pydantic import ValidationError

from edgeloop.core.errors import PermanentError
from edgeloop.rollout.controller import StatusStore
from edgeloop.rollout.sinks import GitOpsSink, LocalSink
from edgeloop.rollout.spec import EdgeRollout

from .test_runner import SAMPLE


def sample(**metadata) -> dict:
    doc = yaml.safe_load(SAMPLE.read_text())
    doc["metadata"].update(metadata)
    return doc


@pytest.mark.parametrize(
    "metadata, fragment",
    [
        ({"name": ".."}, "rollout name '..' must be a DNS-1123 subdomain"),
        ({"name": "a/b"}, "DNS-1123 subdomain"),
        ({"name": "x" * 254}, "at most 253"),
        ({"namespace": "../../y"}, "namespace '../../y' must be a DNS-1123 label"),
        ({"namespace": "Edge"}, "DNS-1123 label"),
    ],
)
def test_rollout_names_are_dns1123(metadata, fragment):
    with pytest.raises(ValidationError, match=fragment.replace(".", r"\.")):
        EdgeRollout.model_validate(sample(**metadata))


def test_node_names_in_a_group_are_dns1123():
    doc = sample()
    doc["spec"]["groups"][0]["nodes"] = ["../../x"]
    with pytest.raises(ValidationError, match="node name '../../x'"):
        EdgeRollout.model_validate(doc)


def _configmap(group: str) -> dict:
    return {
        "kind": "ConfigMap",
        "metadata": {"name": group, "labels": {"edgeloop.io/group": group}},
        "data": {"desired-model.json": "{}"},
    }


def test_local_sink_refuses_a_node_outside_its_root(tmp_path):
    root = tmp_path / "nodes"
    with pytest.raises(PermanentError, match="outside"):
        LocalSink(root).apply("r", [_configmap("g")], {"g": ["../../x"]}, "m")
    assert not (tmp_path / "x").exists() and not (tmp_path.parent / "x").exists()


def test_gitops_sink_never_touches_the_work_tree_above_its_path(tmp_path):
    repo = tmp_path / "fleet"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "keep.txt").write_text("mine")
    sink = GitOpsSink(repo, "edgeloop")
    for name in ("..", "../..", "../.git"):
        with pytest.raises(PermanentError, match="refused"):
            sink.apply(name, [_configmap("g")], {}, "m")
    with pytest.raises(PermanentError, match="refused"):
        GitOpsSink(repo, ".").apply(".git", [_configmap("g")], {}, "m")
    assert (repo / ".git").is_dir() and (repo / "keep.txt").read_text() == "mine"


def test_status_file_stays_in_its_directory(tmp_path):
    rollout = EdgeRollout.model_validate(sample())
    forged = rollout.model_copy(
        update={
            "metadata": rollout.metadata.model_copy(update={"namespace": "../../y"})
        }
    )
    store = StatusStore(tmp_path / "status")
    with pytest.raises(PermanentError, match="outside"):
        store.load(forged)
