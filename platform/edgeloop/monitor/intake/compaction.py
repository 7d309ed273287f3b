"""Compaction and retention of collected partitions.

The intake writes one Parquet file per accepted report (``collect.py``): at
agent defaults that is hundreds of files per node and day, millions a day for
a large fleet. Compaction merges a (kind, model, site, day) partition's files
into one ``compacted-<id>.parquet``; retention deletes partitions older than
``intake.retention.collected_days``.

What keeps it safe:

* Only files whose report is committed in the database are merged. A file
  written for a report whose commit failed stays as it is: the agent redelivers
  that report, which rewrites the same file (same name, same bytes) instead of
  adding its rows a second time. Compaction therefore runs in the retention
  pass *before* the database forgets old reports.
* Beside the compacted file, a sidecar ``_compacted-<id>.json`` (the leading
  underscore hides it from Parquet discovery) lists the files merged, with
  their digests, and the partition hash before compaction. Readers skip any
  listed file still present, so a crash between writing the compacted file and
  deleting the merged ones never shows a row twice, and the next pass finishes
  the deletion. The sidecar is also the lineage map: a training dataset
  records partition hashes; :func:`compactions` leads from such a hash to the
  file that holds the same rows now.
* A report that arrives for a compacted day (an offline site catching up)
  lands beside the compacted file and is merged in at the next pass.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from edgeloop.core.settings import RetentionPolicy
from edgeloop.monitor.intake import collect
from edgeloop.monitor.intake.tables import reports

COMPACTED = collect.COMPACTED
SIDECAR = collect.SIDECAR
TIME_COLUMN = {"readings": "timestamp", "samples": "window_end"}
_LOCK_ID = 0x636F_6D70_6163  # "compac": one compaction pass across replicas
KINDS = tuple(TIME_COLUMN)


@dataclass(frozen=True)
class Compaction:
    """One partition merged: the hash it had, the file that holds its rows now, how many."""

    kind: str
    model: str
    site: str
    day: str
    before_sha256: str
    file: str
    merged: int
    rows: int


def report_key(name: str) -> str:
    """The (file-safe) report key a per-report file is named by."""
    return name.removesuffix(".parquet")


def _remove(location: collect.Root) -> None:
    if collect.is_remote(location):
        from edgeloop_components import uris

        fs, path = uris.filesystem(str(location))
        with contextlib.suppress(FileNotFoundError):  # gone already: as wanted
            fs.rm(path)
    else:
        Path(location).unlink(missing_ok=True)


def _write(frame: pd.DataFrame, location: collect.Root) -> None:
    if collect.is_remote(location):
        with collect.open_file(location, "wb") as handle:
            frame.to_parquet(handle, index=False)
        return
    path = Path(location)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False)
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    tmp.replace(path)


def _write_text(text: str, location: collect.Root) -> None:
    if collect.is_remote(location):
        with collect.open_file(location, "wb") as handle:
            handle.write(text.encode())
        return
    path = Path(location)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def compact_partition(
    part: collect.Partition, committed: Callable[[set[str]], set[str]]
) -> Compaction | None:
    """Merge a partition's committed files (and an earlier compacted file) into one."""
    for stale in part.stale:
        _remove(part.file(stale))  # a pass stopped before deleting it
    files = part.files
    singles = {report_key(n): n for n in files if not n.startswith(COMPACTED)}
    done = committed(set(singles))
    members = sorted(n for n in files if n.startswith(COMPACTED)) + sorted(
        singles[k] for k in done
    )
    if len(members) < 2:
        return None
    frames = []
    for name in members:
        with collect.open_file(part.file(name)) as handle:
            frames.append(pd.read_parquet(handle))
    merged = pd.concat(frames, ignore_index=True).sort_values(
        TIME_COLUMN[part.kind], kind="stable", ignore_index=True
    )
    before = part.sha256 or collect.partition_hash(part)
    ident = hashlib.sha256("\n".join(members).encode()).hexdigest()[:16]
    name = f"{COMPACTED}{ident}.parquet"
    sidecar = {
        "file": name,
        "before_sha256": before,
        "members": {m: collect.object_sha256(part.file(m)) for m in members},
        "rows": len(merged),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    # sidecar first: from the moment the compacted file exists, readers know
    # which files it holds (a crash before it is written leaves only the sidecar,
    # which applies to nothing until the same merge is done again)
    _write_text(json.dumps(sidecar, indent=1), part.file(f"{SIDECAR}{ident}.json"))
    _write(merged, part.file(name))
    for member in members:
        _remove(part.file(member))
    return Compaction(
        part.kind,
        part.model,
        part.site,
        part.day,
        part.sha256,
        name,
        len(members),
        len(merged),
    )


def compact(
    root: collect.Root,
    model: str,
    committed: Callable[[set[str]], set[str]],
    *,
    until_day: str,
    since_day: str = "",
) -> list[Compaction]:
    """Compact every partition of ``model`` with a day in ``[since_day, until_day]``."""
    done = []
    for kind in KINDS:
        listed = collect.partitions(
            root, kind, model, since_day, until_day, hashes=False
        )
        for part in listed:
            if len(part.files) < 2 and not part.stale:
                continue  # nothing to merge: no file is read
            result = compact_partition(part, committed)
            if result is not None:
                done.append(result)
    return done


def compactions(part: collect.Partition) -> list[dict[str, Any]]:
    """The sidecars of a partition: which hash it had before each compaction."""
    return collect.sidecars(part.path)


def days_before(now: datetime, days: float) -> str:
    """The last day (YYYY-MM-DD) that lies wholly ``days`` before ``now``."""
    return (now - timedelta(days=days) - timedelta(days=1)).date().isoformat()


def expire(root: collect.Root, model: str, older_than_day: str) -> int:
    """Delete whole partitions whose day is before ``older_than_day``; returns how many."""
    removed = 0
    for kind in KINDS:
        for part in collect.partitions(
            root, kind, model, until_day=_day_before(older_than_day)
        ):
            if collect.is_remote(part.path):
                from edgeloop_components import uris

                fs, path = uris.filesystem(str(part.path))
                fs.rm(path, recursive=True)
            else:
                shutil.rmtree(part.path, ignore_errors=True)
            removed += 1
    return removed


def _day_before(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


def tidy(
    engine: sa.Engine, root: collect.Root | None, policy: RetentionPolicy, now: datetime
) -> tuple[int, int]:
    """Compact and expire every model's collected partitions; (compacted, expired).

    One pass at a time across intake replicas: on PostgreSQL a session advisory
    lock, taken without waiting (a replica that finds it held skips this pass).
    """
    if root is None or not collect.exists(root):
        return 0, 0
    if engine.dialect.name != "postgresql":
        return _tidy(engine, root, policy, now)
    with engine.connect() as conn:
        got = conn.execute(
            sa.text("SELECT pg_try_advisory_lock(:id)"), {"id": _LOCK_ID}
        )
        if not got.scalar():
            return 0, 0
        try:
            return _tidy(engine, root, policy, now)
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": _LOCK_ID})
            conn.commit()


def _tidy(
    engine: sa.Engine, root: collect.Root, policy: RetentionPolicy, now: datetime
) -> tuple[int, int]:
    """One pass over every model (the caller holds the replicas' lock)."""

    def committed(stems: set[str]) -> set[str]:
        return committed_files(engine, stems)

    compacted = expired = 0
    for model in collect.models(root):
        if policy.compact_after_days:
            until = days_before(now, policy.compact_after_days)
            compacted += len(compact(root, model, committed, until_day=until))
        if policy.collected_days:
            oldest = (now - timedelta(days=policy.collected_days)).date().isoformat()
            expired += expire(root, model, oldest)
    return compacted, expired


def committed_files(engine: sa.Engine, stems: set[str]) -> set[str]:
    """Which per-report files (by file-safe key) belong to committed reports.

    File names replace ``:`` in a key with ``_``; an agent's key is
    ``<node>:<kind>:<hex>``, so each stem is tried as is, with every ``_`` and
    with its last two as ``:``. A file matching none is left alone.
    """
    candidates: dict[str, str] = {}
    for stem in stems:
        for key in (stem, stem.replace("_", ":"), ":".join(stem.rsplit("_", 2))):
            candidates[key] = stem
    found: set[str] = set()
    keys = list(candidates)
    with engine.connect() as conn:
        for start in range(0, len(keys), 500):
            rows = conn.execute(
                sa.select(reports.c.key).where(
                    reports.c.key.in_(keys[start : start + 500])
                )
            )
            found |= {candidates[key] for (key,) in rows}
    return found
