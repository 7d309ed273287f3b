"""Reading a user's YAML file into a pydantic model, with one readable error.

Rollout specs, fleet observation files and trigger policies are all written
by hand; each reader reports a broken file the same way: the path, then what
is wrong (unreadable, not YAML, or the first invalid field by its dotted path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from edgeloop.core.errors import UsageError


def read_yaml(path: Path, what: str) -> Any:
    """The parsed document (None for an empty file).

    Raises:
        UsageError: unreadable or not YAML, naming the file and ``what`` it should hold.
    """
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read {what} ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())  # one line: PyYAML's message spans several
        raise UsageError(f"{path}: not valid YAML ({detail})") from exc


def invalid(path: Path, exc: ValidationError, prefix: str = "") -> UsageError:
    """The first validation error as ``<path>: <prefix><field.path>: <message>``."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
    message = str(first["msg"]).removeprefix("Value error, ")
    return UsageError(f"{path}: {prefix}{where}: {message}")
