"""Step 7: export to ONNX and measure parity with XGBoost."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from edgeloop_components.images import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def export_onnx(
    model: Input[Model], split: Input[Dataset], onnx_model: Output[Model]
) -> float:
    """Convert with onnxmltools; return max |p_onnx - p_xgb| on the holdout.

    Args:
        model: output of train_model.
        split: output of split_data (holdout for parity).
        onnx_model: model.onnx.
    """
    from pathlib import Path

    from edgeloop_components import tasks

    parity = tasks.export_onnx(
        Path(model.path), Path(split.path), Path(onnx_model.path)
    )
    onnx_model.metadata.update({"framework": "onnx", "parity_max_abs_diff": parity})
    return parity
