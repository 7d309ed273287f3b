"""The asset register: which pump is which type (``fleet.json``'s ``pumps`` list).

Agents report readings by entity; what kind of pump an entity is comes from
the operator's asset register. The simulator writes one beside every dataset.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgeloop.core.errors import UsageError


def pump_types(path: Path) -> dict[str, str]:
    """Entity -> pump type.

    Raises:
        UsageError: unreadable, or no ``pumps`` list of objects with
            ``pump_id`` and ``pump_type``.
    """
    try:
        pumps = json.loads(path.read_text(encoding="utf-8")).get("pumps")
    except (OSError, ValueError, AttributeError) as exc:
        raise UsageError(f"{path}: cannot read the asset register ({exc})") from exc
    if not isinstance(pumps, list) or not all(
        isinstance(p, dict) and "pump_id" in p and "pump_type" in p for p in pumps
    ):
        raise UsageError(
            f"{path}: expected a 'pumps' list of objects with pump_id and pump_type"
        )
    return {str(p["pump_id"]): str(p["pump_type"]) for p in pumps}
