"""Compile every pipeline to IR YAML (``make pipelines``); output is not committed."""

from __future__ import annotations

from pathlib import Path

import yaml
from kfp import compiler

from edgeloop_components.errors import ComponentError
from edgeloop_components.pipelines.train_edge_model import (
    PIPELINE_NAME,
    train_edge_model,
)

PIPELINES = {PIPELINE_NAME: train_edge_model}


def compile_all(out_dir: Path, component_image: str = "") -> list[Path]:
    """Write ``<name>.yaml`` for each pipeline into ``out_dir``.

    ``component_image`` (``REPO@sha256:…``, what ``make images PUSH=…`` pushed)
    replaces every step's image, so the IR runs exactly the image that was
    built and tested, not whatever a tag points at when the run starts.
    """
    if component_image and "@sha256:" not in component_image:
        raise ComponentError(
            f"component image {component_image!r} must be pinned by digest (REPO@sha256:…)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, func in PIPELINES.items():
        path = out_dir / f"{name}.yaml"
        compiler.Compiler().compile(func, str(path))
        if component_image:
            pin_image(path, component_image)
        written.append(path)
    return written


def pin_image(path: Path, image: str) -> None:
    """Set every executor's container image in a compiled IR file."""
    docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    executors = docs[0].get("deploymentSpec", {}).get("executors", {})
    for executor in executors.values():
        if "container" in executor:
            executor["container"]["image"] = image
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")


if __name__ == "__main__":
    for path in compile_all(Path("build/pipelines")):
        print(path)
