"""Paths built from names that came from outside (rollouts, nodes, namespaces).

Names are validated where they enter (DNS-1123 in :mod:`edgeloop.rollout.spec`);
this is the second line: whatever a name contains, a sink never writes or
deletes outside the directory it owns.
"""

from __future__ import annotations

from pathlib import Path

from edgeloop.core.errors import PermanentError


def inside(root: Path, *parts: str) -> Path:
    """``root/parts`` resolved, refused unless strictly below ``root``.

    Raises:
        PermanentError: the path is ``root`` itself or escapes it (``..``,
            an absolute part, a symlink pointing out).
    """
    base = root.resolve()
    path = base.joinpath(*parts).resolve()
    if base not in path.parents:
        raise PermanentError(
            f"{'/'.join(parts)!r} resolves to {path}, outside {base}; refused"
        )
    return path
