"""The append-only audit log: every step of the loop, chained by hash.

One JSON object per line in ``$EDGELOOP_HOME/audit.jsonl``. Each record
carries the sha256 of the previous line, so an edited, removed or reordered
record breaks the chain and :func:`verify` says where. Records are only ever
appended (``O_APPEND``, flushed and fsynced), never rewritten.

A chain alone cannot show records cut from its *end*, so every append also
replaces ``audit.jsonl.head`` (atomically) with the record count and the hash
of the last line; ``verify`` compares the log with it. Ship the head elsewhere
(e.g. with each backup) to make truncating both detectable too.

What is recorded (``kind``): ``dataset`` (training data assembled from
collected partitions, with each partition's hash), ``training`` (a pipeline
run and why it ran), ``registered``, ``promoted``, ``rollout`` (every wave
decision), ``trigger`` (fired triggers with their evidence) and ``labels``.
``edgeloop models lineage`` joins them into the chain from data to fleet.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgeloop.core.errors import UsageError

GENESIS = "0" * 64
_LOCK = threading.Lock()


class AuditLog:
    """Append and read the hash-chained audit log at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, kind: str, subject: str = "", **details: Any) -> dict[str, Any]:
        """Add one record; returns it (with its ``prev`` hash)."""
        with _LOCK:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            record = {
                "at": datetime.now(UTC).isoformat(),
                "kind": kind,
                "subject": subject,
                "details": details,
                "prev": GENESIS,
            }
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # other processes append too
                record["prev"] = self._last_hash()
                count = self._head()["records"] if self.head_path.exists() else None
                if count is None:
                    count = len(self._lines())
                line = json.dumps(record, sort_keys=True, default=str) + "\n"
                os.write(fd, line.encode())
                os.fsync(fd)
                self._write_head(
                    count + 1, hashlib.sha256(line[:-1].encode()).hexdigest()
                )
            finally:
                os.close(fd)
        return record

    @property
    def head_path(self) -> Path:
        """Where the count and last hash are kept (beside the log)."""
        return self.path.with_name(self.path.name + ".head")

    def _lines(self) -> list[bytes]:
        return self.path.read_bytes().splitlines() if self.path.exists() else []

    def _head(self) -> dict[str, Any]:
        try:
            head = json.loads(self.head_path.read_text(encoding="utf-8"))
            return {"records": int(head["records"]), "hash": str(head["hash"])}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{self.head_path}: unreadable audit head") from exc

    def _write_head(self, records: int, last_hash: str) -> None:
        tmp = self.head_path.with_name(self.head_path.name + ".tmp")
        tmp.write_text(json.dumps({"records": records, "hash": last_hash}))
        os.replace(tmp, self.head_path)

    def _last_hash(self) -> str:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return GENESIS
        size = self.path.stat().st_size
        with self.path.open("rb") as handle:
            handle.seek(max(0, size - (1 << 20)))
            last = handle.read().splitlines()[-1]
        return hashlib.sha256(last).hexdigest()

    def records(self, kind: str = "", subject: str = "") -> list[dict[str, Any]]:
        """Records, oldest first, optionally of one kind and/or subject."""
        if not self.path.exists():
            return []
        out = []
        for n, line in enumerate(self.path.read_text(encoding="utf-8").splitlines()):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{self.path}:{n + 1}: not a JSON record") from exc
            if (not kind or record["kind"] == kind) and (
                not subject or record["subject"] == subject
            ):
                out.append(record)
        return out

    def verify(self) -> int:
        """Check the whole chain and its head; returns the number of records.

        Raises:
            UsageError: the first line whose ``prev`` does not match, or a log
                whose end does not match its head (records removed from the end,
                or the head removed).
        """
        lines = self._lines()
        if not lines:
            if self.head_path.exists() and self._head()["records"] > 0:
                raise UsageError(
                    f"{self.path}: empty or missing, but its head records "
                    f"{self._head()['records']} records"
                )
            return 0
        prev = GENESIS
        for n, line in enumerate(lines):
            try:
                claimed = json.loads(line)["prev"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise UsageError(f"{self.path}:{n + 1}: not an audit record") from exc
            if claimed != prev:
                raise UsageError(
                    f"{self.path}:{n + 1}: chain broken (a record before it was changed or removed)"
                )
            prev = hashlib.sha256(line).hexdigest()
        if not self.head_path.exists():
            raise UsageError(
                f"{self.head_path} is missing: the end of the log cannot be checked"
            )
        head = self._head()
        if head["records"] != len(lines) or head["hash"] != prev:
            raise UsageError(
                f"{self.path}: ends at record {len(lines)} but its head records "
                f"{head['records']}: records were removed from (or added to) the end"
            )
        return len(lines)
