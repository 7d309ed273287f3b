"""Step 8: latency and memory of the ONNX session per device profile."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model

from edgeloop_components.images import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def profile_latency(
    onnx_model: Input[Model], split: Input[Dataset], profiles_path: str
) -> str:
    """Single-row and batch p50/p99 latency and session memory per profile.

    Args:
        onnx_model: output of export_onnx.
        split: output of split_data (rows to score).
        profiles_path: device profiles YAML; empty for the built-in defaults.
    """
    from pathlib import Path

    from edgeloop_components import tasks

    return tasks.dumps(
        tasks.profile_latency(Path(onnx_model.path), Path(split.path), profiles_path)
    )
