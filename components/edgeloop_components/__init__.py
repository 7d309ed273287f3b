"""edgeloop training pipeline: pure step logic plus thin KFP v2 wrappers.

Logic modules (``validation``, ``featurize``, ``training`` …) never import kfp;
the wrappers in ``steps/`` and the pipelines in ``pipelines/`` do.
"""

__all__: list[str] = []
