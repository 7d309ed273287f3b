"""Where a validated wave goes: node files (local), a git repository (GitOps).

Every sink receives the whole validated set of objects for the rollout and
applies it as one unit, so a wave is never half-written: the local sink writes
each node's file atomically after all of them were prepared; the GitOps sink
makes one commit (or none when nothing changed).

The Kubernetes server-side-apply sink is :mod:`edgeloop.rollout.apply` (the only
module that talks to an API server; the operator uses it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Protocol

from edgeloop.core.errors import PermanentError, RetryableError, UsageError
from edgeloop.core.paths import inside
from edgeloop.rollout.render import config
from edgeloop.rollout.render.yaml import dump


class Sink(Protocol):
    """Applies one rollout's rendered objects."""

    def apply(
        self,
        rollout: str,
        objects: list[dict[str, Any]],
        nodes: dict[str, list[str]],
        message: str,
    ) -> bool:
        """Apply; True when something changed."""
        ...


class LocalSink:
    """Write each node's desired-model file: ``<root>/<node>/desired-model.json``.

    That is exactly what edgecore/kubelet would project from the group's
    ConfigMap, so the demo and tests run the same plan and render code path.
    """

    reaches_cluster = False
    """Node files on this machine: a local bundle path is fine here."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def apply(
        self,
        rollout: str,
        objects: list[dict[str, Any]],
        nodes: dict[str, list[str]],
        message: str,
    ) -> bool:
        """Write every changed node file; returns whether any changed."""
        pending: list[tuple[Path, str]] = []
        for obj in objects:
            data = obj.get("data", {})
            if obj["kind"] != "ConfigMap" or "edgeloop.io/group" not in obj[
                "metadata"
            ].get("labels", {}):
                continue
            group = obj["metadata"]["labels"]["edgeloop.io/group"]
            for node in nodes.get(group, []):
                # what the agent resolves: its own key first, then the group's
                text = data.get(config.node_key(node), data.get(config.DESIRED_FILE))
                if text is None:
                    continue
                target = inside(self.root, node, config.DESIRED_FILE)
                if not target.exists() or target.read_text(encoding="utf-8") != text:
                    pending.append((target, text))
        for target, text in pending:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                "w", dir=target.parent, delete=False, encoding="utf-8"
            ) as tmp:
                tmp.write(text)
            os.replace(tmp.name, target)  # atomic: an agent never reads half a file
        return bool(pending)


class GitOpsSink:
    """Write manifests + ``kustomization.yaml`` into a git work tree and commit.

    Argo CD or Flux then apply the path (examples in docs/rollout.md).
    """

    reaches_cluster = True
    """What it writes reaches edge nodes through a cluster: bundle URIs must be fetchable."""

    def __init__(
        self,
        repo: Path,
        path: str = "edgeloop",
        push: bool = False,
        remote: str = "origin",
        author: str = "",
    ) -> None:
        self.repo = Path(repo)
        self.path = path
        self.push = push
        self.remote = remote
        self.identity = _identity(author)

    def _git(self, *args: str) -> str:
        try:
            done = subprocess.run(
                ["git", "-C", str(self.repo), *args],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RetryableError(f"git {args[0]}: {exc}", delay=10) from exc
        if done.returncode != 0:
            text = (done.stderr or done.stdout).strip().splitlines()
            detail = text[-1] if text else f"exit {done.returncode}"
            if args[0] in {"push", "pull", "fetch"}:
                raise RetryableError(f"git {args[0]} failed: {detail}", delay=10)
            raise PermanentError(f"git {args[0]} failed in {self.repo}: {detail}")
        return done.stdout

    def apply(
        self,
        rollout: str,
        objects: list[dict[str, Any]],
        nodes: dict[str, list[str]],
        message: str,
    ) -> bool:
        """Replace the rollout's directory, commit if it changed, push if asked."""
        if not (self.repo / ".git").exists():
            raise PermanentError(f"{self.repo}: not a git work tree")
        target = inside(self.repo, self.path, rollout)
        if (
            target.parent == self.repo.resolve()
            or ".git" in target.relative_to(self.repo.resolve()).parts
        ):
            raise PermanentError(
                f"{self.path}/{rollout}: the rollout directory must be below a "
                "folder of the repository, outside .git; refused"
            )
        staging = Path(tempfile.mkdtemp(prefix=".edgeloop-", dir=self.repo))
        try:
            names = []
            for obj in objects:
                name = f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
                (staging / name).write_text(dump(obj), encoding="utf-8")
                names.append(name)
            kustomization = {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": sorted(names),
            }
            (staging / "kustomization.yaml").write_text(
                dump(kustomization), encoding="utf-8"
            )
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        relative = str(target.relative_to(self.repo.resolve()))
        self._git("add", "-A", "--", relative)
        if not self._git("status", "--porcelain", "--", relative).strip():
            return False
        # the repository's own identity (or the one given); never one git
        # guesses from the host name
        try:
            self._git(*self.identity, "commit", "-q", "-m", message, "--", relative)
        except PermanentError as exc:
            if "auto-detection is disabled" not in str(exc):
                raise
            raise PermanentError(
                f"no git identity to commit with in {self.repo}: set user.name and "
                "user.email there (git config), or give --git-author 'Name <email>' "
                "(EDGELOOP_GIT_AUTHOR)"
            ) from exc
        if self.push:
            self._git("push", self.remote, "HEAD")
        return True


def _identity(author: str) -> list[str]:
    """``git -c`` options: use only configured identities, or ``author`` if given."""
    options = ["-c", "user.useConfigOnly=true"]
    if not author:
        return options
    match = re.fullmatch(r"\s*([^<>]+?)\s*<([^<>\s]+@[^<>\s]+)>\s*", author)
    if match is None:
        raise UsageError(f"git author {author!r}: expected 'Name <email>'")
    name, email = match.groups()
    return [*options, "-c", f"user.name={name}", "-c", f"user.email={email}"]


def commit_message(
    rollout: str,
    model: str,
    version: str,
    wave: str,
    phase: str,
    lineage: dict[str, str],
) -> str:
    """Commit message carrying model, version, wave and lineage."""
    lines = [f"edgeloop: {rollout} -> {model}:{version} (wave {wave}, {phase})", ""]
    lines += [f"{k}: {v}" for k, v in sorted(lineage.items()) if v]
    return "\n".join(lines) + "\n"


def to_json(objects: list[dict[str, Any]]) -> str:
    """Objects as JSON (for `--output json` dry runs)."""
    return json.dumps(objects, indent=1, sort_keys=False)
