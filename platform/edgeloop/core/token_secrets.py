"""The name of the Secret holding a site's node tokens.

Shared by the rollout (which mounts it into the site's agents) and the
intake's fleet onboarding (which writes it), so both always agree.
"""

from __future__ import annotations

import re

DEFAULT_PREFIX = "edgeloop-node-tokens"


def site_token_secret(prefix: str, site: str) -> str:
    """``<prefix>-<site as a DNS label>``, at most 253 characters."""
    label = re.sub(r"[^a-z0-9-]+", "-", site.lower()).strip("-")
    return f"{prefix}-{label}"[:253].rstrip("-")
