"""Start control-plane workloads from what ``helm template`` renders, as local processes.

The translation is the one a kubelet would do, on one machine:

* the container's ``command`` + ``args`` run as they are (``edgeloop``,
  ``mlflow``, ``python3`` from this virtualenv);
* ``env``, ``envFrom`` (ConfigMaps) and ``fieldRef: metadata.name`` become the
  environment; nothing else from the test's environment gets in but ``PATH``;
* volumes become directories: one per PersistentVolumeClaim (shared by every
  workload that mounts the claim), ConfigMap and projected Secret volumes
  written as files, ``emptyDir`` fresh; each ``mountPath`` in an argument or
  variable is replaced by its directory (and the secrets mount point is given
  as ``EDGELOOP_SECRETS_DIR``, the only place the code looks besides it);
* Service names (``NAME``, ``NAME.NS.svc``, with their port) become
  ``127.0.0.1:LOCALPORT``; a workload behind a Service listens on that port,
  ``--host 0.0.0.0`` becomes ``127.0.0.1``.

If a component cannot be configured this way, the chart is wrong: nothing in
here knows what any component does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from edgeloop.demo.processes import spawn_logged

from ..conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SECRETS_MOUNT = "/var/run/secrets/edgeloop"


def helm_template(values: dict[str, Any], work: Path) -> list[dict[str, Any]]:
    """Render the chart with the quickstart values plus ``values`` (a values file)."""
    extra = work / "values-test.yaml"
    extra.write_text(yaml.safe_dump(values))
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(work / "helm-cache"),
        "HELM_CONFIG_HOME": str(work / "helm-config"),
        "HELM_DATA_HOME": str(work / "helm-data"),
    }
    done = subprocess.run(
        [
            str(BIN / "helm"),
            "template",
            "edgeloop",
            str(ROOT / "helm/edgeloop"),
            "-f",
            str(ROOT / "helm/edgeloop/values-quickstart.yaml"),
            "-f",
            str(extra),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@dataclass
class Cluster:
    """Rendered objects, the local port of every Service, and the volume directories."""

    docs: list[dict[str, Any]]
    root: Path
    ports: dict[tuple[str, int], int] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for svc in self.of_kind("Service"):
            for port in svc["spec"]["ports"]:
                self.ports[(svc["metadata"]["name"], int(port["port"]))] = free_port()

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        assert found, f"the chart renders no {kind} {name}"
        return found[0]

    def url(self, service: str, port: int) -> str:
        """The local URL standing for a Service."""
        return f"http://127.0.0.1:{self.ports[(service, port)]}"

    def _services(self, text: str) -> str:
        for (name, port), local in self.ports.items():
            namespace = self.get("Service", name)["metadata"]["namespace"]
            for host in (
                f"{name}.{namespace}.svc.cluster.local",
                f"{name}.{namespace}.svc",
                name,
            ):
                text = text.replace(f"{host}:{port}", f"127.0.0.1:{local}")
        return text

    def _volumes(self, deployment: str, pod: dict[str, Any]) -> dict[str, Path]:
        """Each volume's directory, filled where the volume carries data."""
        out: dict[str, Path] = {}
        for volume in pod.get("volumes", []):
            name = volume["name"]
            if "persistentVolumeClaim" in volume:
                path = self.root / "pvc" / volume["persistentVolumeClaim"]["claimName"]
            else:
                path = self.root / "pods" / deployment / name
            path.mkdir(parents=True, exist_ok=True)
            if "configMap" in volume:
                data = self.get("ConfigMap", volume["configMap"]["name"])["data"]
                for key, value in data.items():
                    (path / key).write_text(value)
            for source in volume.get("projected", {}).get("sources", []):
                ref = source.get("secret")
                if ref is None:
                    continue
                found = [
                    s
                    for s in self.of_kind("Secret")
                    if s["metadata"]["name"] == ref["name"]
                ]
                if not found:
                    assert ref.get("optional"), f"Secret {ref['name']} is not rendered"
                    continue
                data = found[0].get("stringData", {})
                items = ref.get("items") or [{"key": k, "path": k} for k in data]
                for item in items:
                    (path / item["path"]).write_text(data[item["key"]])
            out[name] = path
        return out

    def command(
        self, deployment: str, pod_name: str | None = None
    ) -> tuple[list[str], dict[str, str]]:
        """The workload's argv and environment, translated for this machine."""
        pod = self.get("Deployment", deployment)["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        volumes = self._volumes(deployment, pod)
        mounts = {
            m["mountPath"]: volumes[m["name"]]
            for m in container.get("volumeMounts", [])
        }
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            ref = source.get("configMapRef")
            assert ref is not None, (
                f"{deployment}: envFrom {source} (secrets are files)"
            )
            env.update(self.get("ConfigMap", ref["name"])["data"])
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = str(item["value"])
            elif (
                item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
                == "metadata.name"
            ):
                env[item["name"]] = pod_name or f"{deployment}-0"
            else:
                raise AssertionError(f"{deployment}: unsupported env {item}")
        argv = [
            str(a) for a in container.get("command", []) + container.get("args", [])
        ]
        listen = self._listen_port(deployment, container)
        argv = self._rewrite_args(argv, listen)
        # one pass, whole path components only: a mount path inside a host path
        # (/tmp inside /tmp/pytest-...) is never replaced twice
        pattern = re.compile(
            r"(?<![\w.-])("
            + "|".join(re.escape(m) for m in sorted(mounts, key=len, reverse=True))
            + r")(?=/|$|[^\w.-])"
        )

        def local(text: str) -> str:
            if mounts:
                text = pattern.sub(lambda m: str(mounts[m.group(1)]), text)
            return self._services(text)

        argv = [local(a) for a in argv]
        env = {k: local(v) for k, v in env.items()}
        # what a kubelet provides, here as host paths
        env.setdefault("HOME", str(self.root / "home"))
        env["PATH"] = f"{BIN}:/usr/bin:/bin"
        if SECRETS_MOUNT in mounts:
            env["EDGELOOP_SECRETS_DIR"] = str(mounts[SECRETS_MOUNT])
        if "/tmp" in mounts:
            env["TMPDIR"] = str(mounts["/tmp"])
        if argv[0] == "python3":
            argv[0] = sys.executable
        elif (BIN / argv[0]).exists():
            argv[0] = str(BIN / argv[0])
        return argv, env

    def _listen_port(
        self, deployment: str, container: dict[str, Any]
    ) -> dict[int, int]:
        """containerPort -> local port for the Services selecting this workload."""
        labels = self.get("Deployment", deployment)["spec"]["template"]["metadata"][
            "labels"
        ]
        named = {p["name"]: int(p["containerPort"]) for p in container.get("ports", [])}
        out: dict[int, int] = {}
        for svc in self.of_kind("Service"):
            selector = svc["spec"].get("selector", {})
            if not selector or any(labels.get(k) != v for k, v in selector.items()):
                continue
            for port in svc["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                container_port = (
                    named.get(target, target) if isinstance(target, str) else target
                )
                out[int(container_port)] = self.ports[
                    (svc["metadata"]["name"], int(port["port"]))
                ]
        # ports no Service exposes (probes) get a free local port of their own
        for port in named.values():
            out.setdefault(port, free_port())
        return out

    @staticmethod
    def _rewrite_args(argv: list[str], listen: dict[int, int]) -> list[str]:
        out = list(argv)
        for i, arg in enumerate(out[:-1]):
            if arg in ("--port", "-p", "--health-port") and out[i + 1].isdigit():
                out[i + 1] = str(listen.get(int(out[i + 1]), out[i + 1]))
            if arg in ("--host", "-h") and out[i + 1] == "0.0.0.0":
                out[i + 1] = "127.0.0.1"
        return out

    def start(
        self,
        deployment: str,
        argv: list[str] | None = None,
        pod_name: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start a workload (optionally with another command, same env and volumes)."""
        rendered, env = self.command(deployment, pod_name)
        log = self.root / "logs" / f"{pod_name or deployment}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        (self.root / "home").mkdir(exist_ok=True)
        proc = spawn_logged(argv or rendered, log, env=env, cwd=str(self.root / "home"))
        self.procs.append(proc)
        return proc

    def exec(self, deployment: str, *args: str) -> Any:
        """``kubectl exec deploy/NAME -- edgeloop -o json ARGS``: the parsed JSON answer."""
        _, env = self.command(deployment)
        done = subprocess.run(
            [str(BIN / "edgeloop"), "-o", "json", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=str(self.root / "home"),
            timeout=300,
        )
        assert done.returncode == 0, f"{deployment}: edgeloop {args}: {done.stderr}"
        return json.loads(done.stdout)

    def run_user(self, env: dict[str, str], *args: str) -> Any:
        """``edgeloop -o json ARGS`` on an operator's machine (not in a pod)."""
        home = Path(env.get("EDGELOOP_HOME", self.root / "user"))
        home.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [str(BIN / "edgeloop"), "-o", "json", *args],
            capture_output=True,
            text=True,
            env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(home), **env},
            cwd=str(home),
            timeout=600,
        )
        assert done.returncode == 0, f"edgeloop {args}: {done.stderr[-3000:]}"
        return json.loads(done.stdout)

    def log(self, name: str) -> str:
        path = self.root / "logs" / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def wait_http(self, url: str, name: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{name} did not answer {url}: {self.log(name)}")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
