"""The ``EdgeRollout`` resource (``edgeloop.io/v1alpha1``), defined once.

The CRD's openAPIV3Schema is generated from these models (:mod:`.crd`); nothing
is kept by hand twice. Validation here is what makes an invalid rollout fail
before anything is planned, rendered or applied: unknown fields, empty or
overlapping targets, out-of-range gates, images without a tag or digest.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

GROUP = "edgeloop.io"
VERSION = "v1alpha1"
KIND = "EdgeRollout"
PLURAL = "edgerollouts"

_IMAGE = re.compile(r"^[a-z0-9][\w./:\-]*(:[\w][\w.\-]{0,127}|@sha256:[0-9a-f]{64})$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)


def dns1123_subdomain(value: str, what: str) -> str:
    """Kubernetes object and node names: lowercase labels joined by dots, ≤ 253.

    Checked where names enter, because sinks turn them into paths: ``..`` or
    ``../../x`` must never reach the file system.
    """
    if len(value) > 253 or not _SUBDOMAIN.match(value):
        raise ValueError(
            f"{what} {value!r} must be a DNS-1123 subdomain "
            "(lowercase letters, digits, '-' and '.', at most 253 characters)"
        )
    return value


def dns1123_label(value: str, what: str) -> str:
    """Namespaces and group names: one lowercase label, ≤ 63 characters."""
    if len(value) > 63 or not _NAME.match(value):
        raise ValueError(
            f"{what} {value!r} must be a DNS-1123 label "
            "(lowercase letters, digits and '-', at most 63 characters)"
        )
    return value


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ModelSelector(_Spec):
    """Which registered model to roll out: an alias to follow, or a pinned version."""

    name: str = Field(min_length=1)
    alias: str | None = None
    version: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_of(self) -> ModelSelector:
        if (self.alias is None) == (self.version is None):
            raise ValueError("model: set exactly one of alias or version")
        return self


class Runtime(_Spec):
    """The agent workload."""

    image: str
    """Agent image with a tag or digest (``:latest``-less pinning is required)."""
    threads: int = Field(1, ge=1, le=64)
    env: dict[str, str] = Field(default_factory=dict)
    intakeUrl: str = Field(
        "http://edgeloop-intake.edgeloop.svc:8000", pattern=r"^(https?://\S+)?$"
    )
    """Where agents send reports; empty keeps them queued on the node."""
    tokenSecret: str = Field(
        "edgeloop-node-tokens", pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$"
    )
    """Secret with one key per node name holding its intake token; empty: none.
    With ``tokenScope: site`` (the default) this is a prefix: the group's agents
    mount ``<tokenSecret>-<site>`` only."""
    tokenScope: Literal["site", "shared"] = "site"
    """``site``: one Secret per site, so a compromised gateway holds the tokens of
    its own site's nodes only (and the intake pins each token to its site, so
    those cannot report elsewhere). ``shared``: every agent mounts one Secret
    holding every node's token (small fleets, one trust zone)."""
    stateVolume: Literal["emptyDir", "hostPath"] = "emptyDir"
    """Where the bundle cache and the outbox live (``/var/lib/edgeloop``).

    ``emptyDir`` (default): survives container restarts and node reboots (the
    pod stays; KubeEdge keeps it through offline autonomy) and is writable by
    the non-root agent through ``fsGroup``; it goes with the pod, whose agent
    drains its outbox on SIGTERM first. ``hostPath``
    (``/var/lib/edgeloop/<rollout>``) also survives the pod being replaced, but
    Kubernetes creates the directory as root: the node must provide it owned by
    uid 10001, and Pod Security levels ``restricted`` and ``baseline`` refuse it:
    it needs ``podSecurity: privileged``."""
    podSecurity: Literal["restricted", "baseline", "privileged"] = "restricted"
    """The Pod Security level the rollout's namespace enforces (its
    ``pod-security.kubernetes.io/enforce`` label). Rendered pods are checked
    against it before anything is applied; the chart's namespace is ``restricted``."""

    @model_validator(mode="after")
    def _fits_pod_security(self) -> Runtime:
        if self.stateVolume == "hostPath" and self.podSecurity != "privileged":
            raise ValueError(
                f"stateVolume hostPath is refused at Pod Security level "
                f"{self.podSecurity!r}: set podSecurity: privileged and render into a "
                "namespace labelled pod-security.kubernetes.io/enforce=privileged, "
                "or keep stateVolume: emptyDir"
            )
        return self

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if not _IMAGE.match(value) or value.endswith(":latest"):
            raise ValueError(
                f"image {value!r} must carry a tag (not latest) or an @sha256 digest"
            )
        return value


class TargetGroup(_Spec):
    """A group of edge nodes: a KubeEdge NodeGroup, or nodes matched by labels (K3s)."""

    name: str = Field(min_length=1, max_length=63)
    nodeGroup: str | None = None
    """Existing KubeEdge NodeGroup to target (created by the rollout when ``nodes`` is set)."""
    nodes: list[str] = Field(default_factory=list)
    """Explicit member nodes (the rollout manages the NodeGroup then)."""
    matchLabels: dict[str, str] = Field(default_factory=dict)
    deviceProfile: str = "gateway-small"
    site: str = ""

    @field_validator("name")
    @classmethod
    def _dns(cls, value: str) -> str:
        return dns1123_label(value, "group name")

    @field_validator("nodes")
    @classmethod
    def _node_names(cls, value: list[str]) -> list[str]:
        return [dns1123_subdomain(node, "node name") for node in value]

    @model_validator(mode="after")
    def _selects_something(self) -> TargetGroup:
        if not self.nodes and not self.matchLabels and not self.nodeGroup:
            raise ValueError(
                f"group {self.name!r}: give nodes, matchLabels or nodeGroup"
            )
        return self


class Gates(_Spec):
    """What a wave must show before the next one starts."""

    minHealthyFraction: float = Field(0.9, ge=0, le=1)
    """Of the reporting nodes, the share that must run the new version and be healthy."""
    soakSeconds: int = Field(300, ge=0, le=7 * 86400)
    maxErrorRate: float = Field(0.05, ge=0, le=1)
    maxP99LatencyMs: float = Field(50.0, gt=0)
    maxSilentFraction: float = Field(0.34, ge=0, le=1)
    """Nodes that stay silent count neither way, up to this share of the wave."""
    maxDriftShareIncrease: float = Field(0.2, ge=0, le=1)
    """Allowed increase of the drifted-input share over the previous version."""


class Wave(_Spec):
    """One step of the rollout."""

    name: str = Field(min_length=1, max_length=63)
    groups: list[str] = Field(default_factory=list)
    percent: int | None = Field(None, ge=1, le=100)
    """Instead of groups: this percentage of the nodes not yet targeted."""
    gates: Gates = Field(default_factory=Gates)
    requireApproval: bool = False

    @model_validator(mode="after")
    def _target(self) -> Wave:
        if bool(self.groups) == (self.percent is not None):
            raise ValueError(
                f"wave {self.name!r}: set exactly one of groups or percent"
            )
        return self


class RollbackPolicy(_Spec):
    """What happens when a gate fails."""

    automatic: bool = True
    scope: Literal["failed-wave", "all-waves"] = "all-waves"


class MaintenanceWindow(_Spec):
    """Hours (UTC) in which a site may change model: ``[startHour, endHour)``.

    A start after the end wraps midnight (``startHour: 22, endHour: 4`` is
    22:00-04:00, the usual night window of an offshore site). A start equal to
    the end is refused: it would mean either nothing or the whole day.
    """

    site: str
    startHour: int = Field(ge=0, le=23)
    endHour: int = Field(ge=1, le=24)

    @model_validator(mode="after")
    def _not_empty(self) -> MaintenanceWindow:
        if self.startHour == self.endHour:
            raise ValueError(
                f"maintenance window for {self.site!r}: startHour equals endHour "
                f"({self.startHour}); use startHour < endHour, or startHour > "
                "endHour for a window across midnight"
            )
        return self

    def contains(self, hour: int) -> bool:
        """Whether the UTC ``hour`` (0-23) lies in the window."""
        if self.startHour < self.endHour:
            return self.startHour <= hour < self.endHour
        return hour >= self.startHour or hour < self.endHour


class EdgeRolloutSpec(_Spec):
    """``spec`` of an EdgeRollout."""

    model: ModelSelector
    runtime: Runtime
    platform: Literal["kubeedge", "k3s"] = "kubeedge"
    groups: list[TargetGroup] = Field(min_length=1)
    waves: list[Wave] = Field(min_length=1)
    rollback: RollbackPolicy = Field(default_factory=RollbackPolicy)
    maintenanceWindows: list[MaintenanceWindow] = Field(default_factory=list)
    paused: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> EdgeRolloutSpec:
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ValueError("groups: names must be unique")
        seen: dict[str, str] = {}
        for group in self.groups:
            for node in group.nodes:
                if node in seen:
                    raise ValueError(
                        f"groups: node {node!r} is in both {seen[node]!r} and {group.name!r}"
                    )
                seen[node] = group.name
        waves = [w.name for w in self.waves]
        if len(set(waves)) != len(waves):
            raise ValueError("waves: names must be unique")
        used: dict[str, str] = {}
        for wave in self.waves:
            for g in wave.groups:
                if g not in names:
                    raise ValueError(f"wave {wave.name!r}: unknown group {g!r}")
                if g in used:
                    raise ValueError(
                        f"wave {wave.name!r}: group {g!r} is already in wave {used[g]!r}"
                    )
                used[g] = wave.name
        return self


class Decision(BaseModel):
    """One recorded controller decision."""

    at: datetime
    wave: str
    action: Literal[
        "start",
        "hold",
        "advance",
        "complete",
        "rollback",
        "pause",
        "resume",
        "promote",
        "refuse",
    ]
    reason: str


class WaveStatus(BaseModel):
    """Per-wave counts the gates read."""

    name: str
    targeted: int = 0
    updated: int = 0
    healthy: int = 0
    failing: int = 0
    silent: int = 0
    startedAt: datetime | None = None


class Condition(BaseModel):
    """A Kubernetes-style condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""


class EdgeRolloutStatus(BaseModel):
    """``status`` of an EdgeRollout (the subresource the controller patches)."""

    phase: Literal[
        "Pending",
        "Progressing",
        "Paused",
        "Succeeded",
        "RolledBack",
        "Failed",
        "Invalid",
    ] = "Pending"
    modelVersion: str = ""
    lastKnownGood: str = ""
    wave: str = ""
    waves: list[WaveStatus] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    history: list[Decision] = Field(default_factory=list)


class Metadata(_Spec):
    """The part of ``metadata`` the controller reads."""

    model_config = ConfigDict(extra="allow")

    name: str
    namespace: str = "edgeloop"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return dns1123_subdomain(value, "rollout name")

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return dns1123_label(value, "namespace")


class EdgeRollout(_Spec):
    """A whole EdgeRollout object."""

    apiVersion: Literal["edgeloop.io/v1alpha1"] = "edgeloop.io/v1alpha1"
    kind: Literal["EdgeRollout"] = "EdgeRollout"
    metadata: Metadata
    spec: EdgeRolloutSpec
    status: EdgeRolloutStatus = Field(default_factory=EdgeRolloutStatus)
