import json
import shutil
import subprocess

import pytest
import yaml
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.rollout.sinks import GitOpsSink, LocalSink

from ..test_cli import assert_one_line_error

runner = CliRunner()

ROLLOUT = {
    "apiVersion": "edgeloop.io/v1alpha1",
    "kind": "EdgeRollout",
    "metadata": {"name": "pumps", "namespace": "edgeloop"},
    "spec": {
        "model": {"name": "pump-failure", "alias": "champion"},
        "runtime": {"image": "ghcr.io/edgeloop/edgeloop-agent:0.1.0"},
        "groups": [
            {"name": "canary", "nodes": ["n1"]},
            {
                "name": "fleet",
                "matchLabels": {"site": "desert"},
                "deviceProfile": "gateway-standard",
            },
        ],
        "waves": [
            {"name": "canary", "groups": ["canary"], "gates": {"soakSeconds": 0}},
            {"name": "fleet", "groups": ["fleet"]},
        ],
    },
}
FLEET = {
    "nodes": [
        {"node": "n1", "last_seen": 4102444800, "active_version": "1"},
        {"node": "n2", "labels": {"site": "desert"}, "last_seen": 4102444800},
        {"node": "n3", "labels": {"site": "desert"}, "last_seen": None},
    ]
}


@pytest.fixture()
def files(registry_with_champion, tmp_path, monkeypatch):
    shutil.copyfile(
        registry_with_champion["root"] / "mlflow.db", tmp_path / "mlflow.db"
    )
    monkeypatch.setenv(
        "EDGELOOP_REGISTRY__TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}"
    )
    (tmp_path / "pumps.yaml").write_text(yaml.safe_dump(ROLLOUT))
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(FLEET))
    return tmp_path


def test_plan_is_a_dry_run_showing_waves_nodes_objects_and_gates(files):
    result = runner.invoke(
        app,
        [
            "-o",
            "json",
            "rollout",
            "plan",
            "-f",
            str(files / "pumps.yaml"),
            "--fleet",
            str(files / "fleet.yaml"),
        ],
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["phase"] == "Progressing" and plan["model"] == "pump-failure:1"
    assert plan["waves"][0] == {
        "wave": "canary",
        "groups": ["canary"],
        "nodes": ["n1"],
        "version": ["1"],
    }
    # n1 already runs v1 healthily and the canary soaks 0 s: the plan advances to the fleet.
    assert plan["wave"] == "fleet"
    assert plan["waves"][1]["nodes"] == ["n2", "n3"] and plan["waves"][1][
        "version"
    ] == ["1"]
    assert "EdgeApplication/pumps-canary" in plan["objects"]
    assert {g["gate"] for g in plan["gates"]} >= {"errors", "silent", "healthy"}
    assert not (files / "home" / "rollouts").exists()


def test_apply_writes_node_files_and_status_then_history(files):
    args = [
        "-f",
        str(files / "pumps.yaml"),
        "--fleet",
        str(files / "fleet.yaml"),
        "--sink",
        "local",
        "--nodes-dir",
        str(files / "nodes"),
    ]
    first = runner.invoke(app, ["-o", "json", "rollout", "apply", *args])
    assert first.exit_code == 0, first.output
    desired = json.loads((files / "nodes" / "n1" / "desired-model.json").read_text())
    assert desired["version"] == "1" and desired["rollout"] == "pumps"
    second = json.loads(
        runner.invoke(app, ["-o", "json", "rollout", "apply", *args]).stdout
    )
    assert second["wave"] == "fleet"
    status = json.loads(
        runner.invoke(
            app, ["-o", "json", "rollout", "status", "pumps", "--dir", str(files)]
        ).stdout
    )
    assert status["wave"] == "fleet" and status["modelVersion"] == "1"
    history = json.loads(
        runner.invoke(
            app, ["-o", "json", "rollout", "history", "pumps", "--dir", str(files)]
        ).stdout
    )
    assert [h["action"] for h in history][:3] == ["start", "advance", "hold"], history
    paused = json.loads(
        runner.invoke(
            app, ["-o", "json", "rollout", "pause", "pumps", "--dir", str(files)]
        ).stdout
    )
    assert paused["phase"] == "Paused"
    again = runner.invoke(app, ["rollout", "rollback", "pumps", "--dir", str(files)])
    assert_one_line_error(again, "no last-known-good version recorded")


@pytest.mark.parametrize(
    "change, fragment",
    [
        (
            lambda r: r["spec"].update(runtime={"image": "agent"}),
            "spec.runtime.image: image 'agent' must carry a tag",
        ),
        (
            lambda r: r["spec"]["waves"][1].update(groups=["ghost"]),
            "unknown group 'ghost'",
        ),
        (
            lambda r: r["spec"].update(model={"name": "pump-failure"}),
            "exactly one of alias or version",
        ),
        (
            lambda r: r["spec"]["waves"][0]["gates"].update(maxErrorRate=7),
            "spec.waves.0.gates.maxErrorRate",
        ),
        (
            lambda r: r["spec"].update(surprise=True),
            "spec.surprise: Extra inputs are not permitted",
        ),
    ],
)
def test_invalid_rollouts_are_refused_before_anything_is_rendered(
    files, change, fragment
):
    broken = json.loads(json.dumps(ROLLOUT))
    change(broken)
    (files / "bad.yaml").write_text(yaml.safe_dump(broken))
    result = runner.invoke(
        app,
        [
            "rollout",
            "apply",
            "-f",
            str(files / "bad.yaml"),
            "--sink",
            "local",
            "--nodes-dir",
            str(files / "nodes"),
        ],
    )
    assert_one_line_error(result, fragment)
    assert not (files / "nodes").exists()


def test_unknown_model_or_alias_is_refused(files):
    ROLLOUT_GHOST = json.loads(json.dumps(ROLLOUT))
    ROLLOUT_GHOST["spec"]["model"] = {"name": "pump-failure", "alias": "ghost"}
    (files / "ghost.yaml").write_text(yaml.safe_dump(ROLLOUT_GHOST))
    assert_one_line_error(
        runner.invoke(app, ["rollout", "plan", "-f", str(files / "ghost.yaml")]),
        "not found",
    )


def test_sink_options_are_checked(files):
    result = runner.invoke(
        app, ["rollout", "apply", "-f", str(files / "pumps.yaml"), "--sink", "local"]
    )
    assert_one_line_error(result, "--sink local needs --nodes-dir")
    result = runner.invoke(
        app, ["rollout", "apply", "-f", str(files / "pumps.yaml"), "--sink", "s3"]
    )
    assert_one_line_error(result, "unknown sink 's3'")


def git(*args, cwd):
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(autouse=True)
def no_global_git_identity(tmp_path, monkeypatch):
    """Only the repository's own config counts (this machine's ~/.gitconfig does not)."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("GIT_COMMITTER_EMAIL", raising=False)
    monkeypatch.delenv("EMAIL", raising=False)


def test_gitops_sink_commits_once_pushes_and_skips_unchanged(tmp_path):
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    work = tmp_path / "work"
    git("clone", "-q", str(remote), str(work), cwd=tmp_path)
    git("config", "user.name", "Fleet Ops", cwd=work)
    git("config", "user.email", "fleet-ops@example.com", cwd=work)
    git(
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "init",
        cwd=work,
    )
    git("push", "-q", "origin", "HEAD", cwd=work)
    sink = GitOpsSink(work, "clusters/offshore", push=True)
    objects = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "pumps-canary-desired-model"},
            "data": {"desired-model.json": "{}"},
        }
    ]
    assert (
        sink.apply(
            "pumps", objects, {}, "edgeloop: pumps -> pump-failure:2 (wave canary)\n"
        )
        is True
    )
    assert sink.apply("pumps", objects, {}, "again") is False
    # the repository's identity, never one made up for it
    author = git("log", "-1", "--format=%an <%ae>|%cn <%ce>", cwd=work).strip()
    assert (
        author == "Fleet Ops <fleet-ops@example.com>|Fleet Ops <fleet-ops@example.com>"
    )
    log = git("log", "--format=%s", cwd=work).splitlines()
    assert log == ["edgeloop: pumps -> pump-failure:2 (wave canary)", "init"]
    files = sorted(p.name for p in (work / "clusters" / "offshore" / "pumps").iterdir())
    assert files == ["configmap-pumps-canary-desired-model.yaml", "kustomization.yaml"]
    assert (
        git("log", "--format=%s", "-1", cwd=remote)
        .strip()
        .startswith("edgeloop: pumps")
    )


def _configmap(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {},
    }


def test_gitops_sink_commits_as_the_given_author_or_says_it_has_none(tmp_path, files):
    from edgeloop.core.errors import PermanentError, UsageError

    repo = tmp_path / "fleet"
    git("init", "-q", str(repo), cwd=tmp_path)
    with pytest.raises(PermanentError, match="no git identity .* --git-author"):
        GitOpsSink(repo).apply("pumps", [_configmap("a")], {}, "m")
    bot = GitOpsSink(repo, author="Fleet Bot <fleet-bot@example.com>")
    assert bot.apply("pumps", [_configmap("a")], {}, "m") is True
    assert git("log", "-1", "--format=%an <%ae>", cwd=repo).strip() == (
        "Fleet Bot <fleet-bot@example.com>"
    )
    with pytest.raises(UsageError, match="expected 'Name <email>'"):
        GitOpsSink(repo, author="fleet-bot")
    # the CLI takes it too, and a bad one is one line
    result = runner.invoke(
        app,
        ["rollout", "apply", "-f", str(files / "pumps.yaml"), "--sink", "gitops"]
        + ["--repo", str(repo), "--git-author", "nobody"],
    )
    assert_one_line_error(result, "git author 'nobody': expected 'Name <email>'")


def test_gitops_sink_refuses_a_non_repository(tmp_path):
    from edgeloop.core.errors import PermanentError

    with pytest.raises(PermanentError, match="not a git work tree"):
        GitOpsSink(tmp_path).apply("pumps", [], {}, "m")


def test_local_sink_writes_only_changed_files(tmp_path):
    cm = {
        "kind": "ConfigMap",
        "metadata": {"labels": {"edgeloop.io/group": "g"}},
        "data": {"desired-model.json": '{"v": 1}'},
    }
    sink = LocalSink(tmp_path)
    assert sink.apply("r", [cm], {"g": ["a", "b"]}, "") is True
    assert sink.apply("r", [cm], {"g": ["a", "b"]}, "") is False
    assert (tmp_path / "b" / "desired-model.json").read_text() == '{"v": 1}'


def test_a_split_group_gets_per_node_keys_and_each_node_its_own_record(tmp_path):
    """A 25 % wave over one 4-node group: the group's ConfigMap carries a per-node
    key for the targeted node, validated like every object; the local sink writes
    each node what its agent would resolve."""
    import json as _json

    from edgeloop.rollout.controller import Reconciler
    from edgeloop.rollout.fleet import EmptyFleet
    from edgeloop.rollout.plan import RegistryView
    from edgeloop.rollout.spec import EdgeRollout

    from .test_plan import desired, latency

    rollout = EdgeRollout.model_validate(
        {
            "metadata": {"name": "pumps"},
            "spec": {
                "model": {"name": "pump-failure", "alias": "champion"},
                "runtime": {"image": "ghcr.io/edgeloop/edgeloop-agent:0.1.0"},
                "platform": "k3s",
                "groups": [{"name": "north", "nodes": ["a1", "a2", "a3", "a4"]}],
                "waves": [
                    {"name": "quarter", "percent": 25},
                    {"name": "rest", "percent": 100},
                ],
            },
        }
    )
    rollout.status.modelVersion, rollout.status.phase = "1", "Succeeded"
    reconciler = Reconciler(
        registry_view=lambda r: RegistryView(
            desired("2", lkg=desired("1")), latency=[latency()]
        ),
        fleet=EmptyFleet(),
        sink=LocalSink(tmp_path),
    )
    outcome = reconciler.reconcile(rollout)
    (cm,) = [o for o in outcome.objects if o["kind"] == "ConfigMap"]
    assert sorted(cm["data"]) == ["desired-model.a1.json", "desired-model.json"]
    versions = {
        n: _json.loads((tmp_path / n / "desired-model.json").read_text())["version"]
        for n in ("a1", "a2", "a3", "a4")
    }
    assert versions == {"a1": "2", "a2": "1", "a3": "1", "a4": "1"}
