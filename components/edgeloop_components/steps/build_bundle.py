"""Step 9: assemble the model bundle."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from edgeloop_components.images import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def build_bundle(
    onnx_model: Input[Model],
    split: Input[Dataset],
    report: str,
    gate_result: str,
    parity: float,
    parity_tolerance: float,
    latency: str,
    ingest: str,
    model_name: str,
    code_revision: str,
    pipeline_run_id: str,
    bundle: Output[Artifact],
) -> bool:
    """Write model.onnx + bundle.json (schema, reference profile, lineage, gates).

    Args:
        onnx_model: output of export_onnx.
        split: output of split_data.
        report: output of evaluate_model.
        gate_result: output of gate_model.
        parity: output of export_onnx.
        parity_tolerance: largest allowed |p_onnx - p_xgb|.
        latency: output of profile_latency.
        ingest: output of validate_data.
        model_name: registered model name.
        code_revision: git revision of the code that trained.
        pipeline_run_id: this pipeline run.
        bundle: the bundle directory.

    Returns:
        Whether every gate passed (quality, champion, parity).
    """
    import json
    from pathlib import Path

    from edgeloop_components import tasks

    result = tasks.assemble_bundle(
        model_name=model_name,
        onnx_path=Path(onnx_model.path),
        split_dir=Path(split.path),
        report=json.loads(report),
        gate_result=json.loads(gate_result),
        parity=parity,
        parity_tolerance=parity_tolerance,
        latency=json.loads(latency),
        ingest=json.loads(ingest),
        code_revision=code_revision,
        pipeline_run_id=pipeline_run_id,
        out_dir=Path(bundle.path),
    )
    bundle.metadata.update(result)
    return bool(result["gates_passed"])
