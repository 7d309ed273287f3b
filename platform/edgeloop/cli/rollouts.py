"""``edgeloop rollout`` and ``edgeloop controller``: plan, apply and steer EdgeRollouts.

Without a cluster the controller reconciles EdgeRollout files against a local
sink (node files) or a GitOps work tree; status is kept under
``$EDGELOOP_HOME/rollouts/``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from edgeloop.cli.devices import devices
from edgeloop.cli.output import emit, state, stderr
from edgeloop.core.errors import UsageError

if TYPE_CHECKING:
    from edgeloop.rollout.controller import Reconciler, StatusStore
    from edgeloop.rollout.spec import EdgeRollout

app = typer.Typer(
    help="EdgeRollouts: plan, apply, status, pause, resume, promote, rollback, history.",
    no_args_is_help=True,
)
controller_app = typer.Typer(
    help="Run the rollout controller without a cluster.", no_args_is_help=True
)

FILE = typer.Option(..., "--file", "-f", help="EdgeRollout YAML file.")
FLEET = typer.Option(None, "--fleet", help="Fleet observations YAML (nodes: [...]).")
AGENTS = typer.Option(
    None,
    "--agents",
    help="YAML map node -> agent URL, probed directly (embedded mode).",
)
INTAKE = typer.Option(
    None,
    "--intake",
    help="Intake URL to read the fleet from (default: EDGELOOP_INTAKE__URL); "
    "the reader token comes from EDGELOOP_INTAKE__READER_TOKEN.",
)
SINK = typer.Option(
    "local", "--sink", help="local (node files) or gitops (git work tree)."
)
NODES_DIR = typer.Option(
    None, "--nodes-dir", help="Local sink: directory with one folder per node."
)
REPO = typer.Option(None, "--repo", help="GitOps sink: git work tree.")
REPO_PATH = typer.Option(
    "edgeloop", "--repo-path", help="GitOps sink: folder inside the repository."
)
PUSH = typer.Option(False, "--push", help="GitOps sink: push after committing.")
GIT_AUTHOR = typer.Option(
    "",
    "--git-author",
    envvar="EDGELOOP_GIT_AUTHOR",
    help="GitOps sink: commit as 'Name <email>' (default: the repository's user.name/user.email).",
)


def _store() -> StatusStore:
    from edgeloop.core.settings import load_settings
    from edgeloop.provenance.audit import AuditLog
    from edgeloop.rollout.controller import StatusStore

    settings = load_settings()
    return StatusStore(settings.home / "rollouts", AuditLog(settings.audit_path()))


def _fleet(fleet: Path | None, agents: Path | None, intake: str | None = None) -> Any:
    """--fleet, --agents or --intake (one at most); else the configured intake, else no fleet."""
    from edgeloop.core.settings import load_settings
    from edgeloop.rollout.fleet import AgentProbe, fleet_source

    if sum(x is not None for x in (fleet, agents, intake)) > 1:
        raise UsageError("give one of --fleet, --agents or --intake")
    if intake is not None and not intake.startswith(("http://", "https://")):
        raise UsageError(f"--intake {intake!r}: expected an http(s):// URL")
    if agents:
        from edgeloop.core.yaml_files import read_yaml

        mapping = read_yaml(agents, "agent map") or {}
        if not isinstance(mapping, dict) or not all(
            isinstance(v, str) for v in mapping.values()
        ):
            raise UsageError(f"{agents}: expected a mapping of node name to agent URL")
        return AgentProbe({str(k): v for k, v in mapping.items()})
    settings = load_settings()
    # Without any fleet view every node counts as silent: the plan's silent
    # gate says so, and waves hold rather than roll out on no evidence.
    return fleet_source(
        intake or settings.intake.url, settings.intake.reader_token, fleet
    )


def _sink(
    kind: str,
    nodes_dir: Path | None,
    repo: Path | None,
    repo_path: str,
    push: bool,
    author: str = "",
) -> Any:
    from edgeloop.rollout.sinks import GitOpsSink, LocalSink

    if kind == "local":
        if nodes_dir is None:
            raise UsageError("--sink local needs --nodes-dir DIR")
        return LocalSink(nodes_dir)
    if kind == "gitops":
        if repo is None:
            raise UsageError("--sink gitops needs --repo DIR")
        return GitOpsSink(repo, repo_path, push, author=author)
    raise UsageError(f"unknown sink {kind!r}: use local or gitops")


def _reconciler(fleet: Any, sink: Any) -> Reconciler:
    from edgeloop.core.settings import load_settings
    from edgeloop.provenance.registry import Registry
    from edgeloop.rollout.controller import Reconciler
    from edgeloop.rollout.registry_view import registry_view

    registry = Registry(load_settings().tracking_uri())
    return Reconciler(
        registry_view=lambda r: registry_view(registry, r), fleet=fleet, sink=sink
    )


def _load(path: Path) -> EdgeRollout:
    from edgeloop.rollout.controller import load_rollout

    return _store().load(load_rollout(path))


@app.command("plan")
def plan_(
    ctx: typer.Context,
    file: Path = FILE,
    fleet: Path | None = FLEET,
    agents: Path | None = AGENTS,
    intake: str | None = INTAKE,
) -> None:
    """Dry run: per wave, which nodes and versions, which objects, which gates; nothing is written."""
    rollout = _load(file)
    outcome = _reconciler(_fleet(fleet, agents, intake), None).reconcile(
        rollout, dry_run=True
    )
    from edgeloop.rollout.runner import summarise

    emit(ctx, summarise(outcome))


@app.command()
def apply(
    ctx: typer.Context,
    file: Path = FILE,
    fleet: Path | None = FLEET,
    agents: Path | None = AGENTS,
    intake: str | None = INTAKE,
    sink: str = SINK,
    nodes_dir: Path | None = NODES_DIR,
    repo: Path | None = REPO,
    repo_path: str = REPO_PATH,
    push: bool = PUSH,
    git_author: str = GIT_AUTHOR,
) -> None:
    """One reconcile: plan, render, validate, write to the sink, record status."""
    _reconcile_and_save(
        ctx,
        _load(file),
        _fleet(fleet, agents, intake),
        _sink(sink, nodes_dir, repo, repo_path, push, git_author),
    )


def _reconcile_and_save(
    ctx: typer.Context,
    rollout: EdgeRollout,
    fleet: Any,
    sink: Any,
    promote: bool = False,
) -> None:
    """What apply and promote share: one reconcile into the sink, status saved, summary shown."""
    outcome = _reconciler(fleet, sink).reconcile(rollout, promote=promote)
    _store().save(outcome.rollout)
    from edgeloop.rollout.runner import summarise

    emit(ctx, summarise(outcome))


NAME = typer.Argument(None, help="Rollout name (<name>.yaml in --dir); or give -f.")
BY_FILE = typer.Option(None, "--file", "-f", help="The EdgeRollout YAML file itself.")


def _by_name(name: str | None, directory: Path, file: Path | None = None) -> Path:
    if (name is None) == (file is None):
        raise UsageError("give a rollout name or -f FILE (one of them)")
    if file is not None:
        if not file.is_file():
            raise UsageError(f"{file}: no such rollout file")
        return file
    assert name is not None
    path = directory / f"{name}.yaml"
    if not path.exists():
        raise UsageError(
            f"{path}: no such rollout file (pass --dir where the EdgeRollout YAML files are)"
        )
    return path


DIR = typer.Option(
    Path("."), "--dir", help="Directory holding <name>.yaml EdgeRollout files."
)


@app.command()
def status(
    ctx: typer.Context,
    name: str | None = NAME,
    dir: Path = DIR,
    file: Path | None = BY_FILE,
) -> None:
    """Phase, wave, per-wave counts and conditions."""
    rollout = _load(_by_name(name, dir, file))
    emit(ctx, json.loads(rollout.status.model_dump_json(exclude={"history"})))


@app.command()
def history(
    ctx: typer.Context,
    name: str | None = NAME,
    dir: Path = DIR,
    file: Path | None = BY_FILE,
) -> None:
    """Every decision with its reason."""
    rollout = _load(_by_name(name, dir, file))
    emit(
        ctx,
        [d.model_dump(mode="json") for d in rollout.status.history],
        title=f"{rollout.metadata.name} history",
    )


def _manual(
    ctx: typer.Context,
    name: str | None,
    dir: Path,
    action: str,
    reason: str,
    file: Path | None = None,
) -> None:
    from edgeloop.rollout.controller import manual

    rollout = manual(_load(_by_name(name, dir, file)), action, time.time(), reason)
    _store().save(rollout)
    emit(
        ctx,
        {
            "rollout": rollout.metadata.name,
            "action": action,
            "phase": rollout.status.phase,
            "wave": rollout.status.wave,
        },
    )


REASON = typer.Option("", "--reason", help="Recorded in the history.")


@app.command()
def pause(
    ctx: typer.Context,
    name: str | None = NAME,
    dir: Path = DIR,
    reason: str = REASON,
    file: Path | None = BY_FILE,
) -> None:
    """Hold the rollout where it is."""
    _manual(ctx, name, dir, "pause", reason, file)


@app.command()
def resume(
    ctx: typer.Context,
    name: str | None = NAME,
    dir: Path = DIR,
    reason: str = REASON,
    file: Path | None = BY_FILE,
) -> None:
    """Continue a paused rollout."""
    _manual(ctx, name, dir, "resume", reason, file)


@app.command()
def rollback(
    ctx: typer.Context,
    name: str | None = NAME,
    dir: Path = DIR,
    reason: str = REASON,
    file: Path | None = BY_FILE,
) -> None:
    """Send every wave back to the last-known-good version (applied at the next reconcile)."""
    _manual(ctx, name, dir, "rollback", reason, file)


@app.command()
def promote(
    ctx: typer.Context,
    file: Path = FILE,
    fleet: Path | None = FLEET,
    agents: Path | None = AGENTS,
    intake: str | None = INTAKE,
    sink: str = SINK,
    nodes_dir: Path | None = NODES_DIR,
    repo: Path | None = REPO,
    repo_path: str = REPO_PATH,
    push: bool = PUSH,
    git_author: str = GIT_AUTHOR,
) -> None:
    """Skip the current wave's soak (and approval) and reconcile now; failing gates still stop it."""
    from edgeloop.rollout.controller import manual

    rollout = manual(_load(file), "promote", time.time())
    _reconcile_and_save(
        ctx,
        rollout,
        _fleet(fleet, agents, intake),
        _sink(sink, nodes_dir, repo, repo_path, push, git_author),
        promote=True,
    )


@controller_app.command("run")
def run(
    ctx: typer.Context,
    rollouts: Path = typer.Option(
        ..., "--rollouts", help="Directory of EdgeRollout YAML files."
    ),
    fleet: Path | None = FLEET,
    agents: Path | None = AGENTS,
    intake: str | None = INTAKE,
    sink: str = SINK,
    nodes_dir: Path | None = NODES_DIR,
    repo: Path | None = REPO,
    repo_path: str = REPO_PATH,
    push: bool = PUSH,
    git_author: str = GIT_AUTHOR,
    interval: float = typer.Option(30.0, min=0.1, help="Seconds between reconciles."),
    once: bool = typer.Option(
        False, "--once", help="Reconcile every file once and exit."
    ),
) -> None:
    """Reconcile every EdgeRollout file in a directory, on an interval (Ctrl-C stops).

    A file whose reconcile fails with a retryable error (registry or intake
    down) waits the delay the error asks for; other errors are reported and the
    file is tried again on the next interval.
    """
    from edgeloop.rollout.runner import ControllerLoop

    if not rollouts.is_dir():
        raise UsageError(f"{rollouts}: not a directory")
    reconciler = _reconciler(
        _fleet(fleet, agents, intake),
        _sink(sink, nodes_dir, repo, repo_path, push, git_author),
    )
    console = stderr()
    loop = ControllerLoop(
        reconciler,
        _store(),
        rollouts,
        interval,
        report=console.print,
        quiet=state(ctx).quiet,
    )
    if once:
        emit(ctx, loop.tick())
        return
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        console.print("controller stopped")


app.command("devices")(devices)
