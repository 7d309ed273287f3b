"""Baseline (d): the same ONNX model served by MLServer through a custom runtime.

MLServer has no ONNX runtime of its own; this is the documented custom-runtime
route (an ``MLModel`` subclass), with one onnxruntime thread like the others.
"""

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxModel(MLModel):
    async def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        uri = self.settings.parameters.uri
        self._session = ort.InferenceSession(
            uri, options, providers=["CPUExecutionProvider"]
        )
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32)
        probabilities = self._session.run(["probabilities"], {"input": x})[0]
        return InferenceResponse(
            model_name=self.name,
            outputs=[
                NumpyCodec.encode_output(name="probabilities", payload=probabilities)
            ],
        )
