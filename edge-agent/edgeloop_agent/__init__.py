"""edgeloop edge agent: the program on every edge node.

Import-light on purpose: importing the package must not load onnxruntime,
FastAPI or numpy; those come with the submodules that need them.
"""

from edgeloop_agent.contracts import BundleManifest, DesiredModel, FeatureSpec

__version__ = "0.1.0"

__all__ = ["BundleManifest", "DesiredModel", "FeatureSpec", "__version__"]
