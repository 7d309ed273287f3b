"""Step ②: EdgeRollouts to the fleet in gated waves.

Owns the EdgeRollout spec and its CRD, pure planning, pure renderers
(KubeEdge, K3s), validation against the vendored CRD schemas, sinks (local node
files, GitOps, Kubernetes apply), fleet observations, the reconcile, the
``controller run`` loop and the kopf operator. May import ``provenance`` and
``core``; never ``train`` or ``triggers``.
"""
