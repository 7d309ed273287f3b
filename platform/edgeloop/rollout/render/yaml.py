"""The one YAML serialiser of rendered manifests: stable, block style, no aliases."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(obj: dict[str, Any]) -> str:
    """One object as YAML, keys in insertion order (our builders order them)."""
    return yaml.dump(
        obj, Dumper=_NoAliases, sort_keys=False, default_flow_style=False, width=100
    )


def dump_all(objects: Iterable[dict[str, Any]]) -> str:
    """A multi-document YAML stream."""
    return "---\n".join(dump(o) for o in objects)
