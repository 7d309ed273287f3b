"""Reading a user's YAML file into a pydantic model, with one readable error.

Rollout specs, fleet observation files and trigger policies are all written
by hand; each reader reports a broken file the same way: the path, then what
is wrong (unreadable, not YAML, or the first invalid field by its dotted path).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from edgeloop.core import yaml_plain
from edgeloop.core.errors import UsageError

MAX_FILE_BYTES = 16 * 2**20
"""Largest user file read (rollouts, fleets, policies, agent maps): a fleet of
10,000 nodes is about 2 MiB; a larger file is a mistake or an attack, and
pure-Python parsing of 20 MiB once took 90 s and 1.2 GB."""


def read_yaml(path: Path, what: str, max_bytes: int = MAX_FILE_BYTES) -> Any:
    """The parsed document (None for an empty file).

    ``.json`` files are parsed as JSON (YAML is a superset, but the JSON parser
    is ~20x faster), everything else with libyaml's C loader and a fast
    constructor for plain documents (:mod:`edgeloop.core.yaml_plain`: the same
    result as PyYAML's safe loader, ~3x faster), after checking the file's size.

    Raises:
        UsageError: too large, unreadable or not YAML/JSON, naming the file
            and ``what`` it should hold.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UsageError(
                f"{path}: {size} bytes is larger than the {max_bytes} bytes a {what} file may have"
            )
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read {what} ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: {what} is not UTF-8 text ({exc.reason})") from exc
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text) if text.strip() else None
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})"
            ) from exc
    try:
        return yaml_plain.load(text)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())  # one line: PyYAML's message spans several
        raise UsageError(f"{path}: not valid YAML ({detail})") from exc


def invalid(path: Path, exc: ValidationError, prefix: str = "") -> UsageError:
    """The first validation error as ``<path>: <prefix><field.path>: <message>``."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
    message = str(first["msg"]).removeprefix("Value error, ")
    return UsageError(f"{path}: {prefix}{where}: {message}")
