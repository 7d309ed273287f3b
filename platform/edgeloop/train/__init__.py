"""Step ① as the control plane drives it: pipeline runs and retraining.

Owns compiling and running the ``train-edge-model`` pipeline (``kfp.local`` or a
Kubeflow Pipelines host) and retraining on the fleet's fresh data. May import
``monitor`` (collected partitions, labels, assets), ``provenance`` and ``core``;
never ``rollout`` or ``triggers`` (independent siblings).
"""
