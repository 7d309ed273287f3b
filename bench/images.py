"""Image figures: size per image, agent cold start and memory inside its container.

``python -m bench.images`` (part of ``make bench``) builds what is missing
with ``hack/images.py``, pushes to a throw-away registry on 127.0.0.1 to read
compressed sizes from the manifests, then runs the agent image the way a
gateway does (read-only root, uid 10001, host network) on a bundle made by the
agent benchmark, and measures:

* cold start: ``podman run`` until ``/v2/health/ready`` answers 200 (model
  fetched, verified, smoke-tested), median of 3;
* resident memory of the agent process (``VmRSS``/``VmHWM`` of PID 1 in the
  container): idle after start, after 2,000 single-row requests, and the peak
  after one 10,000-row request (the agent's own ``max_batch_rows``).

Results go to the "Images" block of docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from bench.agent_bundle import build_bundle, oip
from bench.doc import write_section
from bench.load import free_port
from edgeloop.demo.processes import spawn_logged, wait_http

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
MARK = "## Images"
CONF = {"CONTAINERS_CONF": str(ROOT / "hack" / "containers.conf")}
VERSION = "0.1.0"


def podman(*args: str) -> str:
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, env={**os.environ, **CONF}
    )
    if done.returncode != 0:
        raise RuntimeError(f"podman {args[0]}: {done.stderr.strip()[-300:]}")
    return done.stdout


def build(names: list[str], push: str) -> dict[str, str]:
    """Build (cached) and push; returns image name -> registry reference by digest."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "hack" / "images.py"),
            "build",
            *names,
            "-q",
            "--push",
            push,
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip())
    refs = done.stdout.strip().splitlines()
    return dict(zip(names, refs, strict=True))


def compressed_mb(registry: str, ref: str) -> float:
    """Sum of the pushed layers' (compressed) sizes, from the registry's manifest."""
    repo, digest = ref.removeprefix(f"{registry}/").split("@")
    manifest = httpx.get(
        f"http://{registry}/v2/{repo}/manifests/{digest}",
        headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json, "
            "application/vnd.docker.distribution.manifest.v2+json"
        },
    ).json()
    return sum(layer["size"] for layer in manifest["layers"]) / 2**20


def unpacked_mb(ref: str) -> float:
    return float(json.loads(podman("image", "inspect", ref))[0]["Size"]) / 2**20


def _status(container: str) -> dict[str, float]:
    text = podman("exec", container, "cat", "/proc/1/status")
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = float(value.split()[0]) / 1024
    return out


def run_agent(ref: str, bundle: Path, port: int, name: str) -> float:
    """Start the agent container; returns seconds until it is ready."""
    desired = bundle.parent / "desired-model.json"
    state = bundle.parent / f"state-{name}"  # what a volume gives the agent (uid 10001)
    state.mkdir()
    os.chown(state, 10001, 10001)
    from edgeloop_agent.contracts import DesiredModel, bundle_digest

    desired.write_text(
        DesiredModel(
            model_name="bench",
            version="1",
            bundle_uri="/bundle",
            bundle_sha256=bundle_digest(bundle),
        ).model_dump_json()
    )
    start = time.perf_counter()
    podman(
        "run",
        "-d",
        "--name",
        name,
        "--read-only",
        "--network",
        "host",
        "--user",
        "10001:10001",
        "--cap-drop",
        "ALL",
        "--memory",
        "256m",
        "-v",
        f"{bundle}:/bundle:ro",
        "-v",
        f"{desired}:/etc/edgeloop/desired-model.json:ro",
        "-v",
        f"{state}:/var/lib/edgeloop",
        "--tmpfs",
        "/tmp",
        "-e",
        "EDGELOOP_AGENT_SERVER__HOST=127.0.0.1",
        "-e",
        f"EDGELOOP_AGENT_SERVER__PORT={port}",
        "-e",
        "EDGELOOP_AGENT_NODE__ID=bench",
        ref,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise RuntimeError(
        f"agent container did not become ready: {podman('logs', name)[-500:]}"
    )


def main() -> None:
    names = sys.argv[1:] or ["agent"]
    with tempfile.TemporaryDirectory(prefix="edgeloop-bench-images-") as tmp:
        work = Path(tmp)
        port = free_port()
        config = work / "registry.yml"
        config.write_text(
            f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {work / 'data'}\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
        )
        registry = f"127.0.0.1:{port}"
        proc = spawn_logged(
            ["docker-registry", "serve", str(config)], work / "registry.log"
        )
        try:
            wait_http(
                f"http://{registry}/v2/", proc, "registry", work / "registry.log", 30
            )
            refs = build(names, f"{registry}/edgeloop")
            local = {n: f"localhost/edgeloop-{n}:{VERSION}-amd64" for n in refs}
            sizes = {
                n: (compressed_mb(registry, r), unpacked_mb(local[n]))
                for n, r in refs.items()
            }
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        bundle, x = build_bundle(work)
        starts, rss = [], {}
        for i in range(3):
            name = f"edgeloop-bench-agent-{i}"
            agent_port = free_port()
            try:
                starts.append(run_agent(local["agent"], bundle, agent_port, name))
                if i == 0:
                    rss["idle"] = _status(name)["VmRSS"]
                    url = f"http://127.0.0.1:{agent_port}/v2/models/bench/infer"
                    with httpx.Client() as client:
                        for row in range(2000):
                            client.post(
                                url, content=oip(x[row % len(x) : row % len(x) + 1])
                            )
                    rss["after 2,000 single-row requests"] = _status(name)["VmRSS"]
                    big = np.repeat(x, 10_000 // len(x) + 1, axis=0)[:10_000]
                    answer = httpx.post(url, content=oip(big), timeout=60)
                    assert answer.status_code == 200, answer.text[:200]
                    rss["peak after one 10,000-row request"] = _status(name)["VmHWM"]
            finally:
                subprocess.run(
                    ["podman", "rm", "-f", name],
                    capture_output=True,
                    env={**os.environ, **CONF},
                )
    lines = [
        MARK,
        "",
        "`python -m bench.images` on this machine (2 cores). Sizes of the images",
        "`make images` builds (Debian bookworm base from mmdebstrap, wheels installed",
        "with `--no-index`); compressed = the layers pushed to a registry.",
        "",
        "| image | compressed MB | unpacked MB |",
        "| --- | --- | --- |",
        *(f"| edgeloop-{n} | {c:.0f} | {u:.0f} |" for n, (c, u) in sizes.items()),
        "",
        "Published sizes of general model servers, for scale (not measured here):",
        "`seldonio/mlserver:1.3.5` 3.74 GB and `seldonio/mlserver:1.3.5-sklearn`",
        "0.93 GB (validatedpatterns/industrial-edge#343), `seldonio/mlserver:1.3.5-slim`",
        "about 900 MB compressed (opendatahub-io/ai-edge#95); KServe's own images run",
        "from 1.8 GB (`kfserving/pytorchserver`, kserve/kserve#535) to ~7.5 GB for a",
        "custom transformer (kserve/kserve#2861). No published size of KServe's",
        "sklearn/xgboost server was found.",
        "",
        "The agent in its container (read-only root, uid 10001, `--memory 256m`,",
        "a 200-tree 20-input XGBoost bundle):",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| cold start to ready (median of 3; fetch + verify + smoke test) | {statistics.median(starts):.2f} s |",
        *(f"| resident memory, {k} | {v:.0f} MiB |" for k, v in rss.items()),
        "",
    ]
    write_section("bench.images", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
