"""Feature computation shared by training and the edge (pure numpy).

``windows`` turns raw readings into model inputs; ``sketch`` bins inputs over
the reference edges for drift. One implementation each, used on both sides.
"""

from edgeloop_agent.features.sketch import bin_counts, psi, reference_edges
from edgeloop_agent.features.windows import (
    history_length,
    rolling_features,
    window_features,
)

__all__ = [
    "bin_counts",
    "history_length",
    "psi",
    "reference_edges",
    "rolling_features",
    "window_features",
]
