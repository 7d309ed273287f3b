"""The container image every training step runs in.

``@dsl.component`` evaluates ``base_image`` at import time, so this is the one
place in the components package that reads the environment
(``EDGELOOP_COMPONENT_IMAGE``). The image is built from ``components/Containerfile`` (``make images``)
with ``pip install ".[pipelines]"``: steps never pip-install at run time.
"""

from __future__ import annotations

import os

DEFAULT_COMPONENT_IMAGE = "ghcr.io/edgeloop/edgeloop-components:0.1.0"
COMPONENT_IMAGE = os.environ.get("EDGELOOP_COMPONENT_IMAGE", DEFAULT_COMPONENT_IMAGE)
