"""The append-only audit log: every step of the loop, chained by hash.

One JSON object per line in ``$EDGELOOP_HOME/audit.jsonl``. Each record
carries the sha256 of the previous line, so an edited, removed or reordered
record breaks the chain and :func:`verify` says where. Records are only ever
appended (``O_APPEND``, flushed and fsynced), never rewritten.

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
                line = json.dumps(record, sort_keys=True, default=str) + "\n"
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        return record

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
        """Check the whole chain; returns the number of records.

        Raises:
            UsageError: the first line whose ``prev`` does not match.
        """
        if not self.path.exists():
            return 0
        prev = GENESIS
        lines = self.path.read_bytes().splitlines()
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
        return len(lines)
