"""The agent Deployment: image, env, probes, resources, security, volumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgeloop.rollout.render import config, labels, placement

AGENT_PORT = 8080
CACHE_HOST_DIR = "/var/lib/edgeloop"

#: Resources by device-profile thread count: small gateways get small limits.
#: The agent idles at ~120 MiB resident and a request at its own max_batch_rows
#: (10,000 rows) peaked at 188-194 MiB: a 192Mi limit would OOM-kill it on a
#: legitimate request, so the limits leave that peak headroom.
_RESOURCES = {
    1: {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "1", "memory": "256Mi"},
    },
    2: {
        "requests": {"cpu": "200m", "memory": "160Mi"},
        "limits": {"cpu": "2", "memory": "320Mi"},
    },
}


def resources(threads: int) -> dict[str, Any]:
    """Requests/limits for an agent using ``threads`` onnxruntime threads."""
    return _RESOURCES.get(threads, _RESOURCES[2])


@dataclass(frozen=True)
class AgentWorkload:
    """Everything that varies between groups' agent Deployments."""

    name: str
    namespace: str
    rollout: str
    group: str
    site: str
    image: str
    threads: int
    replicas: int
    extra_env: dict[str, str]
    object_labels: dict[str, str]
    node_selector: dict[str, str] | None = None
    affinity_nodes: list[str] | None = None
    intake_url: str = ""
    token_secret: str = ""
    """The Secret this group's agents mount (already scoped to the site)."""
    state_volume: str = "emptyDir"


TOKENS_DIR = "/var/run/edgeloop/tokens"


def agent_deployment(w: AgentWorkload) -> dict[str, Any]:
    """The agent Deployment for one group.

    Long: one Deployment literal (security context, probes, mounts, env); split up, a reviewer could no longer compare it with the rendered YAML field by field.
    """
    select = labels.selector(w.rollout, w.group)
    env: list[dict[str, Any]] = [
        {
            "name": "EDGELOOP_AGENT_NODE__ID",
            "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
        },
        {"name": "EDGELOOP_AGENT_NODE__SITE", "value": w.site or w.group},
        {"name": "EDGELOOP_AGENT_NODE__COHORT", "value": w.group},
        {"name": "EDGELOOP_AGENT_SERVER__HOST", "value": "0.0.0.0"},
        {"name": "EDGELOOP_AGENT_SCORING__THREADS", "value": str(w.threads)},
        {
            "name": "EDGELOOP_AGENT_MODEL__DESIRED_MODEL_PATH",
            "value": f"{config.MOUNT_DIR}/{config.DESIRED_FILE}",
        },
        {
            "name": "EDGELOOP_AGENT_MODEL__CACHE_DIR",
            "value": f"{CACHE_HOST_DIR}/models",
        },
        {
            "name": "EDGELOOP_AGENT_OUTBOX__PATH",
            "value": f"{CACHE_HOST_DIR}/outbox.sqlite",
        },
        {"name": "EDGELOOP_AGENT_OUTBOX__INTAKE_URL", "value": w.intake_url},
        *(
            [
                {
                    "name": "EDGELOOP_AGENT_OUTBOX__TOKEN_FILE",
                    "value": TOKENS_DIR + "/{node}",
                }
            ]
            if w.token_secret
            else []
        ),
    ]
    # runtime.env overrides what is generated (one entry per name)
    env = [e for e in env if e["name"] not in w.extra_env] + [
        {"name": k, "value": v} for k, v in sorted(w.extra_env.items())
    ]
    token_mounts = (
        [{"name": "node-tokens", "mountPath": TOKENS_DIR, "readOnly": True}]
        if w.token_secret
        else []
    )
    # optional: an agent without its token still scores and queues its reports
    token_volumes = (
        [
            {
                "name": "node-tokens",
                "secret": {"secretName": w.token_secret, "optional": True},
            }
        ]
        if w.token_secret
        else []
    )
    affinity = placement.one_per_node(select)
    if w.affinity_nodes:
        affinity.update(placement.node_affinity(w.affinity_nodes))
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "nodeSelector": {placement.EDGE_ROLE: "", **(w.node_selector or {})},
        "tolerations": placement.tolerations(),
        "affinity": affinity,
        "containers": [
            {
                "name": "agent",
                "image": w.image,
                "imagePullPolicy": "IfNotPresent",
                "args": ["serve"],
                "ports": [
                    {"name": "http", "containerPort": AGENT_PORT, "protocol": "TCP"}
                ],
                "env": env,
                "resources": resources(w.threads),
                "livenessProbe": {
                    "httpGet": {"path": "/v2/health/live", "port": "http"},
                    "periodSeconds": 10,
                },
                "readinessProbe": {
                    "httpGet": {"path": "/v2/health/ready", "port": "http"},
                    "periodSeconds": 5,
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [
                    {
                        "name": "desired-model",
                        "mountPath": config.MOUNT_DIR,
                        "readOnly": True,
                    },
                    {"name": "state", "mountPath": CACHE_HOST_DIR},
                    {"name": "tmp", "mountPath": "/tmp"},
                    *token_mounts,
                ],
            }
        ],
        "volumes": [
            {
                "name": "desired-model",
                "configMap": {"name": config.configmap_name(w.rollout, w.group)},
            },
            # emptyDir: writable by the non-root agent (fsGroup), kept across
            # container restarts and reboots; hostPath only where the node
            # provides the directory owned by the agent (see Runtime.stateVolume).
            _state_volume(w),
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
            *token_volumes,
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": w.name,
            "namespace": w.namespace,
            "labels": dict(w.object_labels),
            # an edge node offline for days must restart its agent from the
            # image it has; the image is pinned (tag or digest), so
            # IfNotPresent cannot pick up something else
            "annotations": {
                "checkov.io/skip1": "CKV_K8S_15=offline edge nodes start from the cached, pinned image"
            },
        },
        "spec": {
            "replicas": w.replicas,
            "selector": {"matchLabels": select},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
            },
            "template": {
                "metadata": {"labels": {**w.object_labels, **labels.OFFLINE_AUTONOMY}},
                "spec": pod_spec,
            },
        },
    }


def _state_volume(w: AgentWorkload) -> dict[str, Any]:
    """The volume behind ``/var/lib/edgeloop`` (bundle cache and outbox)."""
    if w.state_volume == "hostPath":
        return {
            "name": "state",
            "hostPath": {"path": f"{CACHE_HOST_DIR}/{w.rollout}", "type": "Directory"},
        }
    return {"name": "state", "emptyDir": {"sizeLimit": "1Gi"}}
