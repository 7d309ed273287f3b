"""ONNX Runtime scorer: the only module of the agent that imports onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from edgeloop_agent.errors import BundleError

#: Output of onnxmltools' XGBoost classifier export: float32 [n, 2].
PROBABILITIES = "probabilities"


class ScoringError(BundleError):
    """The model raised or produced non-finite scores.

    At activation the smoke test runs the model, so such a bundle is refused
    like a corrupt one (backoff, last good model kept); while serving, the
    request gets HTTP 500 with a JSON body and the failure is counted.
    """

    status_code = 500


class OnnxScorer:
    """Scores with one CPU InferenceSession; thread count from the device profile."""

    def __init__(self, threads: int = 1) -> None:
        self._threads = threads
        self._session: ort.InferenceSession | None = None
        self._input = "input"
        self.n_inputs = 0

    def load(self, model_path: Path) -> None:
        """Open the session and check it has the shape we serve."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(
                str(model_path), options, providers=["CPUExecutionProvider"]
            )
        except (
            Exception
        ) as exc:  # onnxruntime raises its own untyped Fail/InvalidGraph errors
            raise BundleError(
                f"{model_path}: not a loadable ONNX model ({str(exc).splitlines()[0][:200]})"
            ) from exc
        inputs = session.get_inputs()
        outputs = {o.name for o in session.get_outputs()}
        if len(inputs) != 1 or PROBABILITIES not in outputs:
            raise BundleError(
                f"{model_path}: expected one input and a '{PROBABILITIES}' output"
            )
        shape = inputs[0].shape
        if len(shape) != 2 or not isinstance(shape[1], int):
            raise BundleError(
                f"{model_path}: input must be [batch, n_inputs], got {shape}"
            )
        self._input = inputs[0].name
        self.n_inputs = int(shape[1])
        self._session = session

    def predict(self, inputs: NDArray[np.float32]) -> NDArray[np.float64]:
        """Positive-class probability per row."""
        if self._session is None:
            raise BundleError("no model loaded")
        try:
            out = self._session.run([PROBABILITIES], {self._input: inputs})[0]
            scores = np.asarray(out[:, 1], dtype=np.float64)
        except (IndexError, ValueError, RuntimeError) as exc:
            # onnxruntime's own errors derive from RuntimeError; a 1-D output
            # makes ``out[:, 1]`` an IndexError
            raise ScoringError(
                f"model failed to score ({exc.__class__.__name__}: {str(exc)[:200]})"
            ) from exc
        if not np.isfinite(scores).all():
            raise ScoringError(
                f"model produced non-finite scores for {int(np.sum(~np.isfinite(scores)))} "
                f"of {len(scores)} rows"
            )
        return scores

    def unload(self) -> None:
        """Drop the session; memory is freed when no request still holds it."""
        self._session = None
