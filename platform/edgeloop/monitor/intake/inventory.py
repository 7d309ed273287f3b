"""Onboarding a fleet in one command: tokens for every node of an inventory.

``edgeloop intake token create --inventory nodes.csv --out DIR`` reads the
node list (CSV with columns ``node,site[,cohort]``, or YAML/JSON: a list of
such mappings), issues every missing token in **one transaction** (site and
cohort pinned with it), and writes one file per node, ``DIR/<site>/<node>``,
plus ``DIR/secrets/<secret>.yaml``: a Secret per site (the name the rollout's
``tokenScope: site`` mounts) built from every token file in ``DIR/<site>/``.

Re-running is idempotent: a node that already has a token keeps it and gets
no new file (only its hash is stored, so it cannot be printed again) unless
``--reissue``. Keep DIR (it holds secrets: files are 0600) and re-run into
it, and each site's Secret keeps every node's token.
"""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
import yaml

from edgeloop.core.errors import UsageError
from edgeloop.core.token_secrets import DEFAULT_PREFIX, site_token_secret
from edgeloop.core.yaml_files import MAX_FILE_BYTES, read_yaml
from edgeloop.monitor.intake.tables import token_hash, tokens

SECRET_PREFIX = DEFAULT_PREFIX
_NODE = re.compile(r"^[A-Za-z0-9._-]{1,253}$")
"""Node names are Secret keys too: letters, digits, ``-``, ``_``, ``.``."""
_COLUMNS = {"node", "site", "cohort"}


@dataclass(frozen=True)
class InventoryNode:
    """One line of the inventory."""

    node: str
    site: str
    cohort: str = ""


@dataclass(frozen=True)
class Issued:
    """What one run did: new tokens by node, and nodes that kept theirs."""

    tokens: dict[str, str]
    kept: tuple[str, ...]


def read_inventory(path: Path) -> list[InventoryNode]:
    """The nodes of a CSV, YAML or JSON inventory, every row checked.

    Raises:
        UsageError: naming the file, the row and the column of the first
            problem (missing column, bad name, duplicate node).
    """
    if path.suffix.lower() in {".yaml", ".yml", ".json"}:
        raw = read_yaml(path, "node inventory")
        if isinstance(raw, dict) and "nodes" in raw:
            raw = raw["nodes"]
        if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
            raise UsageError(
                f"{path}: expected a list of {{node, site, cohort}} mappings (or nodes: [...])"
            )
        rows = [
            {str(k): "" if v is None else str(v) for k, v in r.items()} for r in raw
        ]
        first_row = 1
    else:
        rows = _csv_rows(path)
        first_row = 2  # after the header line
    nodes: list[InventoryNode] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=first_row):
        where = f"{path}: row {number}"
        unknown = sorted(set(row) - _COLUMNS)
        if unknown:
            raise UsageError(
                f"{where}: unknown column {unknown[0]!r} (node, site, cohort)"
            )
        node, site = row.get("node", "").strip(), row.get("site", "").strip()
        if not _NODE.match(node):
            raise UsageError(
                f"{where}: node {node!r} must be 1-253 letters, digits, '-', '_' or '.'"
            )
        if not site or site_token_secret(SECRET_PREFIX, site) == SECRET_PREFIX:
            raise UsageError(f"{where}: node {node!r} needs a site (letters or digits)")
        if node in seen:
            raise UsageError(
                f"{where}: node {node!r} is listed again (first on row {seen[node]})"
            )
        seen[node] = number
        nodes.append(InventoryNode(node, site, row.get("cohort", "").strip()))
    if not nodes:
        raise UsageError(f"{path}: the inventory lists no nodes")
    return nodes


def _csv_rows(path: Path) -> list[dict[str, str]]:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise UsageError(f"{path}: {size} bytes is larger than an inventory may be")
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot read node inventory ({exc.strerror or exc})"
        ) from exc
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path}: node inventory is not UTF-8 text ({exc.reason})"
        ) from exc
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "node" not in reader.fieldnames:
        raise UsageError(
            f"{path}: the first line must name the columns: node,site[,cohort]"
        )
    rows = []
    for number, row in enumerate(reader, start=2):
        if None in row:
            raise UsageError(f"{path}: row {number}: more values than columns")
        rows.append({k: v or "" for k, v in row.items()})
    return rows


def issue(
    engine: sa.Engine, nodes: list[InventoryNode], reissue: bool = False
) -> Issued:
    """Tokens for every node without one (all with ``reissue``), in one transaction."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        existing = {
            str(node): str(role)
            for node, role in conn.execute(sa.select(tokens.c.node, tokens.c.role))
        }
        readers = [n.node for n in nodes if existing.get(n.node) == "reader"]
        if readers:
            raise UsageError(
                f"{readers[0]!r} holds a reader token; a node cannot share its name"
            )
        todo = [n for n in nodes if reissue or n.node not in existing]
        kept = tuple(n.node for n in nodes if not reissue and n.node in existing)
        if reissue and todo:
            names = [n.node for n in todo]
            for start in range(0, len(names), 500):
                conn.execute(
                    tokens.delete().where(tokens.c.node.in_(names[start : start + 500]))
                )
        issued = {n.node: secrets.token_urlsafe(32) for n in todo}
        if todo:
            conn.execute(
                tokens.insert(),
                [
                    {
                        "node": n.node,
                        "token_sha256": token_hash(issued[n.node]),
                        "created_at": now,
                        "site": n.site,
                        "cohort": n.cohort,
                        "role": "node",
                    }
                    for n in todo
                ],
            )
    return Issued(issued, kept)


def write_tokens(out: Path, nodes: list[InventoryNode], issued: Issued) -> list[Path]:
    """Token files for the new tokens, then each site's Secret from its directory.

    Returns the Secret manifests written.
    """
    by_site: dict[str, list[InventoryNode]] = {}
    for n in nodes:
        by_site.setdefault(n.site, []).append(n)
    manifests = []
    try:
        for site, members in sorted(by_site.items()):
            folder = out / _site_dir(site)
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            for n in members:
                if n.node in issued.tokens:
                    _write_secret_file(folder / n.node, issued.tokens[n.node] + "\n")
            data = {
                f.name: f.read_text(encoding="utf-8").strip()
                for f in sorted(folder.iterdir())
                if f.is_file()
            }
            name = site_token_secret(SECRET_PREFIX, site)
            secret = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": name,
                    "labels": {"app.kubernetes.io/part-of": "edgeloop"},
                },
                "type": "Opaque",
                "stringData": data,
            }
            target = out / "secrets" / f"{name}.yaml"
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _write_secret_file(target, yaml.safe_dump(secret, sort_keys=False))
            manifests.append(target)
    except OSError as exc:
        raise UsageError(
            f"{out}: cannot write token files ({exc.strerror or exc})"
        ) from exc
    return manifests


def missing_files(out: Path, nodes: list[InventoryNode], issued: Issued) -> list[str]:
    """Nodes that kept a token whose file is not in ``out`` (issued elsewhere)."""
    site_of = {n.node: n.site for n in nodes}
    return [
        node
        for node in issued.kept
        if not (out / _site_dir(site_of[node]) / node).is_file()
    ]


def _site_dir(site: str) -> str:
    return site_token_secret(SECRET_PREFIX, site).removeprefix(f"{SECRET_PREFIX}-")


def _write_secret_file(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
