"""Baseline (c): the plain FastAPI + pydantic endpoint one would write first.

Same model, same onnxruntime settings as the agent; request and response go
through pydantic models and FastAPI's default serialisation.
Run: ``uvicorn bench.servers.naive_fastapi:app`` with ``BENCH_MODEL=path/model.onnx``.
"""

import os

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI
from pydantic import BaseModel

options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = ort.InferenceSession(
    os.environ["BENCH_MODEL"], options, providers=["CPUExecutionProvider"]
)
app = FastAPI()


class Request(BaseModel):
    inputs: list[list[float]]


class Response(BaseModel):
    scores: list[float]


@app.post("/predict")
def predict(request: Request) -> Response:
    x = np.asarray(request.inputs, dtype=np.float32)
    probabilities = session.run(["probabilities"], {"input": x})[0]
    return Response(scores=probabilities[:, 1].tolist())
