"""Rollout state belongs to one rollout: its UID, else its model under its name."""

from __future__ import annotations

from datetime import UTC, datetime

from edgeloop.rollout.controller import StatusStore, identity
from edgeloop.rollout.spec import Decision, EdgeRollout

from .test_name_traversal import sample


def _with(rollout: EdgeRollout, **changes) -> EdgeRollout:
    raw = rollout.model_dump(mode="json")
    for key, value in changes.items():
        section, field = key.split("__")
        raw[section][field] = value
    return EdgeRollout.model_validate(raw)


def _decided(rollout: EdgeRollout, reason: str) -> EdgeRollout:
    out = rollout.model_copy(deep=True)
    out.status.history.append(
        Decision(at=datetime.now(UTC), wave="canary", action="start", reason=reason)
    )
    return out


def test_an_unrelated_rollout_with_the_same_name_starts_fresh(tmp_path):
    store = StatusStore(tmp_path)
    pumps = EdgeRollout.model_validate(sample())
    store.save(_decided(pumps, "first"))
    assert [d.reason for d in store.load(pumps).status.history] == ["first"]
    # same namespace and name, another model: none of the first one's history
    other = pumps.model_copy(
        update={
            "spec": pumps.spec.model_copy(
                update={
                    "model": pumps.spec.model.model_copy(
                        update={"name": "compressor-surge"}
                    )
                }
            )
        }
    )
    assert store.load(other).status.history == []
    # deleted and created again in the cluster: a new UID, a new history
    first = _with(pumps, metadata__uid="0b6e4c1e-1d9a-4d6f-8a71-6f1f0a9c2b11")
    again = _with(pumps, metadata__uid="7f3d2a90-55c4-4b1e-9e0e-2d7b8c6a4f00")
    store.save(_decided(first, "uid one"))
    assert [d.reason for d in store.load(first).status.history] == ["uid one"]
    assert store.load(again).status.history == []
    assert identity(first) != identity(again) != identity(pumps)
    # the same object keeps its history
    assert [d.reason for d in store.load(_with(first)).status.history] == ["uid one"]


def test_a_uid_that_is_not_a_uid_is_hashed_not_used_as_a_file_name(tmp_path):
    pumps = _with(EdgeRollout.model_validate(sample()), metadata__uid="../../etc")
    assert "/" not in identity(pumps) and identity(pumps).startswith("m-")
    StatusStore(tmp_path).save(_decided(pumps, "x"))
    assert [p.parent for p in tmp_path.rglob("*.json")] == [tmp_path]


def test_status_and_history_take_the_file_itself(tmp_path, monkeypatch):
    import yaml
    from typer.testing import CliRunner

    from edgeloop.cli import app

    from ..test_cli import assert_one_line_error

    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path / "home"))
    pumps = EdgeRollout.model_validate(sample())
    StatusStore(tmp_path / "home" / "rollouts").save(_decided(pumps, "from the file"))
    path = tmp_path / "somewhere" / "pumps-rollout.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(sample()))
    runner = CliRunner()
    shown = runner.invoke(app, ["rollout", "history", "-f", str(path), "-o", "json"])
    assert shown.exit_code == 0, shown.output
    assert "from the file" in shown.stdout
    assert runner.invoke(app, ["rollout", "status", "-f", str(path)]).exit_code == 0
    assert_one_line_error(
        runner.invoke(app, ["rollout", "status"]), "give a rollout name or -f FILE"
    )
    assert_one_line_error(
        runner.invoke(app, ["rollout", "status", "pumps", "-f", str(path)]),
        "give a rollout name or -f FILE",
    )
