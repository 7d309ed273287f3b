"""Compile every pipeline to IR YAML (``make pipelines``); output is not committed."""

from __future__ import annotations

from pathlib import Path

from kfp import compiler

from edgeloop_components.pipelines.train_edge_model import (
    PIPELINE_NAME,
    train_edge_model,
)

PIPELINES = {PIPELINE_NAME: train_edge_model}


def compile_all(out_dir: Path) -> list[Path]:
    """Write ``<name>.yaml`` for each pipeline into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, func in PIPELINES.items():
        path = out_dir / f"{name}.yaml"
        compiler.Compiler().compile(func, str(path))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in compile_all(Path("build/pipelines")):
        print(path)
