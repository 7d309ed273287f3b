"""A real PostgreSQL server on 127.0.0.1 for tests (Debian's ``postgresql`` package).

``initdb`` refuses to run as root, so as root the cluster is created and run
as the ``postgres`` user the package adds; the data directory lives under the
test's temporary directory and is removed with it.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .conftest import free_port


def binaries() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` holding ``initdb``, if installed."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]),
    )
    return Path(found[-1]).parent if found else None


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.getuid() == 0 else cmd


@contextmanager
def postgres_server(logs: Path) -> Iterator[str]:
    """Start a throwaway cluster; yields a SQLAlchemy URL (``postgresql+psycopg://``).

    The cluster lives in its own directory under the system temp dir (the
    ``postgres`` user cannot enter pytest's root-only one); its log is copied
    to ``logs`` when it stops.
    """
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="edgeloop-pg-"))
    try:
        yield from _serve(root)
    finally:
        if (root / "postgres.log").exists():
            shutil.copyfile(root / "postgres.log", logs / "postgres.log")
        shutil.rmtree(root, ignore_errors=True)


def _serve(root: Path) -> Iterator[str]:
    bin_dir = binaries()
    if bin_dir is None:
        raise AssertionError(
            "PostgreSQL is not installed: `make test` installs the Debian package "
            "postgresql (hack/system_deps.sh)"
        )
    data = root / "pgdata"
    if os.getuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    subprocess.run(
        _as_postgres(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "edgeloop", "-A", "trust"]
        ),
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = root / "postgres.log"
    subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-o",
                f"-h 127.0.0.1 -p {port} -k {root}",
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            ready = subprocess.run(
                [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                break
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        yield f"postgresql+psycopg://edgeloop@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]
            ),
            capture_output=True,
        )
