"""Commands printed for the user to paste: absolute paths that work in a fresh shell.

``make demo`` installs into ``.venv`` without activating it, so a printed
``mlflow ui …`` or ``edgeloop models …`` fails in a new terminal unless the
user happens to activate the venv, and a relative ``.edgeloop/…`` or
``.venv/bin/…`` fails from any other directory. These helpers spell the tool
as the executable beside this interpreter and paths as absolute, shell-quoted.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path


def tool(name: str) -> str:
    """The executable ``name`` of this environment (its ``bin``), quoted; else the bare name."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return shlex.quote(str(beside.absolute()))
    found = shutil.which(name)
    return shlex.quote(found) if found else name


def path(value: str | Path) -> str:
    """An absolute, shell-quoted path."""
    return shlex.quote(str(Path(value).absolute()))
