"""Build edgeloop's OCI images offline with buildah, and push them by digest.

``make images`` runs ``python hack/images.py build``. Nothing is pulled from a
public registry, which is also how an air-gapped site builds:

1. **Base**: a Debian bookworm root filesystem with ``python3`` made by
   ``mmdebstrap`` from Debian's package mirror, imported with ``podman import``
   (``--base python`` uses ``python:3.11-slim`` instead, where a registry is
   reachable).
2. **Wheelhouse** per image: the project's own wheel plus its extra (``edge``,
   ``platform``, ``pipelines``), resolved on the host with ``constraints.txt``
   (``pip wheel`` for the host's architecture, ``pip download --platform`` for
   another), then installed inside the build with ``--no-index``.
3. **Build**: ``buildah bud --isolation chroot`` of the image's Containerfile
   with OCI labels (version, revision, source).
4. **Push** (``--push REGISTRY/PREFIX``): ``podman push --digestfile``; the
   digest of every pushed image is written to ``build/images/digests.json``
   (and ``build/images/overlays/<overlay>``: the kustomize overlays with the
   platform image by digest),
   and everything downstream refers to images by digest.

Each step is cached by the hash of what goes into it (package list, pyproject,
constraints, Containerfile, wheels): a rerun with nothing changed only checks
that the images exist. Errors are one line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "images"
PLATFORM_IMAGE = "ghcr.io/edgeloop/edgeloop-platform"
"""The platform image's name in manifests/base (kustomize rewrites it by digest)."""
CONTAINERS_CONF = ROOT / "hack" / "containers.conf"
DEBIAN_PACKAGES = ("python3", "python3-venv", "ca-certificates")
SUITE = "bookworm"


@dataclass(frozen=True)
class Image:
    """One image of the project: its name, Containerfile and the extra it installs."""

    name: str
    containerfile: str
    extra: str


IMAGES = {
    "agent": Image("edgeloop-agent", "edge-agent/Containerfile", "edge"),
    "platform": Image("edgeloop-platform", "platform/Containerfile", "platform"),
    "components": Image("edgeloop-components", "components/Containerfile", "pipelines"),
}
_PLATFORM_TAGS = {
    "amd64": ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64"),
    "arm64": (
        "manylinux2014_aarch64",
        "manylinux_2_17_aarch64",
        "manylinux_2_28_aarch64",
    ),
}


class BuildError(Exception):
    """A step failed; the message is the one line the user sees."""


def version() -> str:
    """The project's version (pyproject.toml), the images' tag."""
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


def revision() -> str:
    """The git revision the images are built from.

    ``EDGELOOP_REVISION`` when set (a copy of the tree without ``.git``, as CI
    runs the suite from), else ``git rev-parse HEAD``, else ``unknown``.
    """
    if os.environ.get("EDGELOOP_REVISION"):
        return os.environ["EDGELOOP_REVISION"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def host_arch() -> str:
    """The host's architecture in OCI terms."""
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), "amd64")


def env() -> dict[str, str]:
    """The environment for podman/buildah: the project's containers.conf.

    It sets what these machines need (no ulimits, runc, host network) without
    touching the system's configuration.
    """
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def run(cmd: list[str], what: str, log: Path | None = None) -> str:
    """Run a tool; on failure raise one line naming the step and the log."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env())
    except FileNotFoundError as exc:
        raise BuildError(
            f"{what}: {cmd[0]} is not installed (apt-get install {cmd[0]})"
        ) from exc
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line]
        last = lines[-1] if lines else f"exit code {done.returncode}"
        where = f" (log: {log})" if log else ""
        raise BuildError(f"{what} failed: {last.strip()[:300]}{where}")
    return done.stdout


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:16]


def image_exists(ref: str) -> bool:
    """Whether local storage holds ``ref``."""
    done = subprocess.run(
        ["podman", "image", "exists", ref], capture_output=True, env=env()
    )
    return done.returncode == 0


def label(ref: str, key: str) -> str:
    """One label of a local image ('' when absent)."""
    out = run(["podman", "image", "inspect", ref], f"inspect {ref}")
    labels = json.loads(out)[0].get("Labels") or {}
    return str(labels.get(key, ""))


def base_image(arch: str, progress: bool = True) -> str:
    """The Debian base for ``arch``, built once per package list (mmdebstrap)."""
    key = _digest(SUITE, arch, *DEBIAN_PACKAGES)
    ref = f"localhost/edgeloop-base:{SUITE}-{arch}-{key}"
    if image_exists(ref):
        return ref
    BUILD.mkdir(parents=True, exist_ok=True)
    tar = BUILD / f"rootfs-{arch}.tar"
    if progress:
        print(f"images: building the {SUITE} base for {arch} (mmdebstrap, ~40 s)")
    run(
        [
            "mmdebstrap",
            "--variant=minbase",
            f"--architectures={arch}",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            SUITE,
            str(tar),
        ],
        f"base image ({arch})",
        BUILD / f"mmdebstrap-{arch}.log",
    )
    run(["podman", "import", "--arch", arch, str(tar), ref], f"import base {ref}")
    tar.unlink()
    return ref


def project_wheel(out: Path) -> Path:
    """Build the project's own wheel into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("edgeloop-*.whl"):
        old.unlink()
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        "project wheel",
    )
    (wheel,) = out.glob("edgeloop-*.whl")
    return wheel


def wheelhouse(image: Image, arch: str, progress: bool = True) -> Path:
    """The wheels ``image`` installs, for ``arch``: ``deps/`` and ``project/``.

    The dependencies are cached by pyproject + constraints (a change of the
    project's code does not fetch them again); the project's own wheel is
    rebuilt when its sources change.
    """
    house = BUILD / "wheels" / f"{image.extra}-{arch}"
    deps, project = house / "deps", house / "project"
    key = _digest(
        image.extra,
        arch,
        (ROOT / "pyproject.toml").read_bytes(),
        (ROOT / "constraints.txt").read_bytes(),
    )
    stamp = deps / ".complete"
    if not (stamp.exists() and stamp.read_text() == _stamp(key, deps)):
        if progress:
            print(f"images: wheelhouse for {image.name} ({arch})")
        _fetch_dependencies(image, arch, deps, project)
        stamp.write_text(_stamp(key, deps))
    sources = _sources_digest()
    project_stamp = project / ".complete"
    if not (project_stamp.exists() and project_stamp.read_text() == sources):
        project_wheel(project)
        project_stamp.write_text(sources)
    return house


def _fetch_dependencies(image: Image, arch: str, deps: Path, project: Path) -> None:
    """Every wheel of the image's extra except the project's own, into ``deps``."""
    if deps.exists():
        shutil.rmtree(deps)
    deps.mkdir(parents=True)
    wheel = project_wheel(project)
    requirement = f"{wheel}[{image.extra}]"
    pip = [sys.executable, "-m", "pip"]
    constraints = ["-c", str(ROOT / "constraints.txt")]
    if arch == host_arch():
        # pip wheel also builds the few dependencies shipped only as sdists
        cmd = [*pip, "wheel", "-q", "-w", str(deps), *constraints, requirement]
    else:
        tags = [f"--platform={t}" for t in _PLATFORM_TAGS[arch]]
        cmd = [
            *pip,
            "download",
            "-q",
            "--only-binary=:all:",
            "--python-version=3.11",
            "--implementation=cp",
            "--abi=cp311",
            *tags,
            "-d",
            str(deps),
            *constraints,
            requirement,
        ]
    run(
        cmd,
        f"wheelhouse for {image.name} ({arch})",
        BUILD / f"pip-{image.extra}-{arch}.log",
    )
    for own in deps.glob("edgeloop-*.whl"):
        own.unlink()


def _stamp(key: str, house: Path) -> str:
    """What a complete wheelhouse records: its inputs' key and the wheels it holds.

    A wheel removed (or added) by hand makes the cache miss instead of
    breaking every later build.
    """
    wheels = sorted(p.name for p in house.glob("*.whl"))
    return "\n".join([key, *wheels])


def _sources_digest() -> str:
    """A digest of the package sources (the project wheel is built from them)."""
    h = hashlib.sha256()
    for folder in (
        "platform/edgeloop",
        "components/edgeloop_components",
        "edge-agent/edgeloop_agent",
    ):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(ROOT)).encode())
                h.update(path.read_bytes())
    return h.hexdigest()


def build(image: Image, arch: str, base: str, progress: bool = True) -> str:
    """Build ``image`` for ``arch`` on ``base``; returns its local reference."""
    house = wheelhouse(image, arch, progress)
    containerfile = ROOT / image.containerfile
    # what is in the context, not what the stamps say: a wheel removed by hand
    # must not find the image built with it
    wheels = sorted(
        f"{p.relative_to(house)}:{p.stat().st_size}" for p in house.rglob("*.whl")
    )
    key = _digest(
        containerfile.read_bytes(),
        base,
        arch,
        revision(),
        *wheels,
        (house / "project" / ".complete").read_text(),
    )
    ref = f"localhost/{image.name}:{version()}-{arch}"
    if image_exists(ref) and label(ref, "io.edgeloop.build-key") == key:
        return ref
    if progress:
        print(f"images: building {ref} (buildah)")
    with tempfile.TemporaryDirectory(prefix="edgeloop-ctx-", dir=BUILD) as ctx:
        # hard links: the platform's wheelhouse is about 1 GB
        shutil.copytree(
            house,
            Path(ctx) / "wheels",
            ignore=shutil.ignore_patterns(".complete"),
            copy_function=os.link,
        )
        run(
            [
                "buildah",
                "bud",
                "--isolation",
                "chroot",
                # layer cache: the dependencies' layer is reused while only
                # the project's wheel changes
                "--layers",
                "--arch",
                arch,
                "--build-arg",
                f"BASE={base}",
                "--build-arg",
                f"VERSION={version()}",
                "--build-arg",
                f"REVISION={revision()}",
                "--label",
                f"io.edgeloop.build-key={key}",
                "-f",
                str(containerfile),
                "-t",
                ref,
                ctx,
            ],
            f"build {image.name} ({arch})",
            BUILD / f"build-{image.name}-{arch}.log",
        )
    return ref


def push(ref: str, destination: str, tls_verify: bool) -> str:
    """Push ``ref`` to ``destination`` (``host:port/repo:tag``); returns its digest."""
    with tempfile.NamedTemporaryFile(prefix="edgeloop-digest-") as digest_file:
        run(
            [
                "podman",
                "push",
                f"--tls-verify={'true' if tls_verify else 'false'}",
                "--digestfile",
                digest_file.name,
                ref,
                f"docker://{destination}",
            ],
            f"push {ref} to {destination}",
        )
        digest = Path(digest_file.name).read_text().strip()
    if not digest.startswith("sha256:"):
        raise BuildError(f"push {ref}: the registry returned no digest")
    return digest


def write_digest_overlays(platform: str) -> list[Path]:
    """``build/images/overlays/<overlay>``: each shipped overlay, platform image by digest.

    ``kubectl apply -k build/images/overlays/k3s`` then installs exactly the
    image that was pushed (kustomize's ``images`` transformer, ``digest:``).
    """
    name, _, digest = platform.partition("@")
    written = []
    for overlay in sorted((ROOT / "manifests" / "overlays").iterdir()):
        if not (overlay / "kustomization.yaml").is_file():
            continue
        target = BUILD / "overlays" / overlay.name
        target.mkdir(parents=True, exist_ok=True)
        relative = os.path.relpath(overlay, target)
        (target / "kustomization.yaml").write_text(
            "# Generated by hack/images.py after a push; not committed.\n"
            "apiVersion: kustomize.config.k8s.io/v1beta1\n"
            "kind: Kustomization\n"
            f"resources:\n  - {relative}\n"
            "images:\n"
            f"  - name: {PLATFORM_IMAGE}\n"
            f"    newName: {name}\n"
            f"    digest: {digest}\n",
            encoding="utf-8",
        )
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    """``hack/images.py build [IMAGE ...] [--arch A] [--push REGISTRY/PREFIX]``."""
    parser = argparse.ArgumentParser(prog="images", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build (and push) images")
    b.add_argument("images", nargs="*", choices=[*IMAGES, []], default=[])
    b.add_argument("--arch", default=host_arch(), choices=sorted(_PLATFORM_TAGS))
    b.add_argument(
        "--base", default="debian", help="debian (mmdebstrap) or an image reference"
    )
    b.add_argument(
        "--push",
        default="",
        help="REGISTRY/PREFIX to push to, e.g. 127.0.0.1:5000/edgeloop",
    )
    b.add_argument(
        "--tls-verify",
        action="store_true",
        help="verify the registry's TLS certificate",
    )
    b.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    names = args.images or list(IMAGES)
    try:
        base = (
            base_image(args.arch, not args.quiet)
            if args.base == "debian"
            else args.base
        )
        digests: dict[str, str] = {}
        for name in names:
            ref = build(IMAGES[name], args.arch, base, not args.quiet)
            if args.push:
                dest = f"{args.push.rstrip('/')}/{IMAGES[name].name}:{version()}"
                digest = push(ref, dest, args.tls_verify)
                digests[name] = f"{dest.rsplit(':', 1)[0]}@{digest}"
            print(digests.get(name, ref))
        if digests:
            out = BUILD / "digests.json"
            known = json.loads(out.read_text()) if out.exists() else {}
            out.write_text(json.dumps({**known, **digests}, indent=2, sort_keys=True))
            if "platform" in digests:
                write_digest_overlays(digests["platform"])
    except BuildError as exc:
        print(f"images: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("images: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
