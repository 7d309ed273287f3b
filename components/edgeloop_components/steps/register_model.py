"""Step 10: register in MLflow and move aliases."""

from kfp import dsl
from kfp.dsl import Artifact, Input

from edgeloop_components.images import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def register_model(
    bundle: Input[Artifact],
    tracking_uri: str,
    gates_passed: bool,
    auto_promote: bool,
    params: dict,
) -> dict:
    """Register the bundle; ``champion`` moves only when every gate passed.

    Args:
        bundle: output of build_bundle.
        tracking_uri: MLflow tracking/registry URI.
        gates_passed: every gate's verdict, from build_bundle.
        auto_promote: promotion policy: move champion automatically when gates pass.
        params: pipeline parameters, logged with the run.
    """
    from pathlib import Path

    from edgeloop_components import tasks

    result = tasks.register_bundle(
        Path(bundle.path), tracking_uri, gates_passed, auto_promote, dict(params)
    )
    return result
