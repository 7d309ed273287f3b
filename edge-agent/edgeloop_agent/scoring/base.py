"""The scorer protocol: an explicit load -> predict -> unload lifecycle."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray


class Scorer(Protocol):
    """Something that turns model inputs into failure probabilities."""

    def load(self, model_path: Path) -> None:
        """Prepare the model; raise :class:`~edgeloop_agent.errors.BundleError` if unusable."""

    def predict(self, inputs: NDArray[np.float32]) -> NDArray[np.float64]:
        """Scores in [0, 1] for ``(n, n_inputs)`` float32 inputs."""
        ...

    def unload(self) -> None:
        """Release the model's memory."""
