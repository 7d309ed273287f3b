"""Secrets as files: a mounted Secret's keys named like environment variables.

Kubernetes best practice (checkov CKV_K8S_35) is to mount Secrets as files
rather than expose them as environment variables (which leak into child
processes, crash dumps and ``kubectl describe``). The chart mounts each Secret
under ``/var/run/secrets/edgeloop`` with its keys named like the variables
they stand for (``EDGELOOP_INTAKE__READER_TOKEN``, ``AWS_ACCESS_KEY_ID``...);
:func:`apply` copies them into this process's environment once at start, so
pydantic-settings, boto3 and s3fs read them the usual way. A variable that is
already set wins: an explicit override stays explicit.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DEFAULT_DIR = Path("/var/run/secrets/edgeloop")
_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
MAX_BYTES = 64 * 1024


def apply(directory: Path | None = None) -> list[str]:
    """Set ``NAME=<file content>`` for each file ``NAME`` in the directory; returns the names set.

    The directory is ``$EDGELOOP_SECRETS_DIR`` or the default mount point; a
    missing directory is normal (nothing mounted). Files whose names are not
    environment-variable names (Kubernetes' ``..data`` links) are skipped.
    """
    root = directory or Path(os.environ.get("EDGELOOP_SECRETS_DIR") or DEFAULT_DIR)
    if not root.is_dir():
        return []
    applied = []
    for path in sorted(root.iterdir()):
        if not _NAME.fullmatch(path.name) or path.name in os.environ:
            continue
        try:
            if not path.is_file() or path.stat().st_size > MAX_BYTES:
                continue
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            continue
        os.environ[path.name] = value
        applied.append(path.name)
    return applied


def main(argv: list[str]) -> None:
    """``python -m edgeloop.core.secret_files CMD ARGS...``: apply, then become CMD.

    For programs that read credentials from the environment only (the MLflow
    server's boto3), so they too get their Secret as files.
    """
    if not argv:
        raise SystemExit("usage: python -m edgeloop.core.secret_files CMD [ARGS...]")
    apply()
    os.execvp(argv[0], argv)  # noqa: S606 - the chart's own command line


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
