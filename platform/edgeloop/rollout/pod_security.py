"""The Kubernetes Pod Security Standards, applied to the pods we render.

The namespace the chart creates enforces ``restricted``; a rendered agent that
breaks it would be refused by the API server only at apply time, wave by wave.
So every rendered pod template is checked here first, against the level its
rollout declares (``runtime.podSecurity``), with the rules of the standard
(kubernetes.io/docs/concepts/security/pod-security-standards, v1.30):

baseline: no host namespaces, no privileged containers, capabilities added
only from the baseline set, no ``hostPath`` volumes, no host ports, seccomp not
``Unconfined``, /proc mount ``Default``, only safe sysctls.
restricted: baseline, plus only the restricted volume types, no privilege
escalation, non-root (and not uid 0), seccomp ``RuntimeDefault``/``Localhost``,
all capabilities dropped and at most ``NET_BIND_SERVICE`` added.
"""

from __future__ import annotations

from typing import Any

LEVELS = ("privileged", "baseline", "restricted")
_BASELINE_CAPS = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip
_SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
}  # fmt: skip
_RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip


def violations(pod: dict[str, Any], level: str) -> list[str]:
    """Every rule of ``level`` the pod spec breaks, one readable line each."""
    if level == "privileged":
        return []
    found = _baseline(pod)
    if level == "restricted":
        found += _restricted(pod)
    return found


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        *pod.get("initContainers", []),
        *pod.get("containers", []),
        *pod.get("ephemeralContainers", []),
    ]


def _baseline(pod: dict[str, Any]) -> list[str]:
    out = [
        f"spec.{k} is true" for k in ("hostNetwork", "hostPID", "hostIPC") if pod.get(k)
    ]
    for volume in pod.get("volumes", []):
        if "hostPath" in volume:
            out.append(f"volume {volume['name']!r} is a hostPath")
    pod_sc = pod.get("securityContext") or {}
    if (pod_sc.get("seccompProfile") or {}).get("type") == "Unconfined":
        out.append("pod seccompProfile is Unconfined")
    for sysctl in pod_sc.get("sysctls", []):
        if sysctl.get("name") not in _SAFE_SYSCTLS:
            out.append(f"sysctl {sysctl.get('name')!r} is not in the safe set")
    for c in _containers(pod):
        sc = c.get("securityContext") or {}
        name = c.get("name", "?")
        if sc.get("privileged"):
            out.append(f"container {name!r} is privileged")
        added = set((sc.get("capabilities") or {}).get("add", []))
        if added - _BASELINE_CAPS:
            out.append(f"container {name!r} adds {sorted(added - _BASELINE_CAPS)}")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            out.append(f"container {name!r} uses a hostPort")
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
            out.append(f"container {name!r} seccompProfile is Unconfined")
        if sc.get("procMount", "Default") != "Default":
            out.append(f"container {name!r} procMount is not Default")
    return out


def _restricted(pod: dict[str, Any]) -> list[str]:
    out = []
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= _RESTRICTED_VOLUMES:
            out.append(
                f"volume {volume['name']!r} of type {sorted(kinds)} is not allowed"
            )
    pod_sc = pod.get("securityContext") or {}
    if pod_sc.get("runAsUser") == 0:
        out.append("pod runAsUser is 0")
    for c in _containers(pod):
        sc = c.get("securityContext") or {}
        name = c.get("name", "?")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(
                f"container {name!r} does not set allowPrivilegeEscalation: false"
            )
        if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
            out.append(f"container {name!r} may run as root (runAsNonRoot unset)")
        if sc.get("runAsUser") == 0:
            out.append(f"container {name!r} runAsUser is 0")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get(
            "type"
        )
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(
                f"container {name!r} has no RuntimeDefault/Localhost seccompProfile"
            )
        caps = sc.get("capabilities") or {}
        if "ALL" not in caps.get("drop", []):
            out.append(f"container {name!r} does not drop ALL capabilities")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            out.append(f"container {name!r} adds capabilities beyond NET_BIND_SERVICE")
    return out


def pod_templates(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(where, pod spec) of every pod template in rendered objects, KubeEdge's included."""
    out = []
    for obj in objects:
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name', '?')}"
        if obj.get("kind") in ("Deployment", "DaemonSet", "StatefulSet", "Job"):
            out.append((where, obj["spec"]["template"]["spec"]))
        elif obj.get("kind") == "EdgeApplication":
            for manifest in obj["spec"]["workloadTemplate"].get("manifests", []):
                if manifest.get("kind") == "Deployment":
                    out.append((where, manifest["spec"]["template"]["spec"]))
    return out
