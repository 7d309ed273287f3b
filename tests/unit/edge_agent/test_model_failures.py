"""A model that answers NaN or raises never activates, never answers non-JSON,
and a node rolled back to what it serves is healthy again."""

import asyncio
import hashlib
import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgeloop_agent.contracts import MANIFEST_FILE, MODEL_FILE, BundleError
from edgeloop_agent.scoring.model_store import ModelStore
from edgeloop_agent.scoring.onnx import OnnxScorer, ScoringError

from .conftest import desired_for
from .test_model_store import lifecycle, write_desired

N_INPUTS = 32


def nan_model(path) -> None:
    """p = sigmoid(NaN * x): NaN for every row, a valid two-column output."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, N_INPUTS])
    y = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])
    w = helper.make_tensor(
        "w", TensorProto.FLOAT, [N_INPUTS, 1], [float("nan")] * N_INPUTS
    )
    nodes = [
        helper.make_node("MatMul", ["input", "w"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["p"]),
        helper.make_node("Concat", ["p", "p"], ["probabilities"], axis=1),
    ]
    _save(path, helper.make_graph(nodes, "nan", [x], [y], initializer=[w]))


def flat_model(path) -> None:
    """A 1-D 'probabilities' output: ``out[:, 1]`` cannot index it."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, N_INPUTS])
    y = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None])
    nodes = [helper.make_node("ReduceSum", ["input"], ["probabilities"], keepdims=0)]
    _save(path, helper.make_graph(nodes, "flat", [x], [y]))


def _save(path, graph) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def with_model(bundle, dst, build):
    shutil.copytree(bundle, dst)
    build(dst / MODEL_FILE)
    data = json.loads((dst / MANIFEST_FILE).read_text())
    data["model_sha256"] = hashlib.sha256((dst / MODEL_FILE).read_bytes()).hexdigest()
    data["lineage"]["pipeline_run_id"] = dst.name
    (dst / MANIFEST_FILE).write_text(json.dumps(data))
    return dst


@pytest.mark.parametrize(
    "build, fragment",
    [
        (nan_model, "non-finite scores"),
        (flat_model, "model failed to score (IndexError"),
    ],
)
def test_the_smoke_test_refuses_models_that_answer_nan_or_raise(
    bundle, tmp_path, build, fragment
):
    bad = with_model(bundle, tmp_path / "bad", build)
    store = ModelStore(tmp_path / "cache")
    desired = desired_for(bad)
    with pytest.raises(BundleError, match=fragment.replace("(", r"\(")):
        store.load(store.fetch(desired), desired)


def test_scoring_failures_are_errors_with_a_500_status(tmp_path):
    nan_model(tmp_path / "m.onnx")
    scorer = OnnxScorer()
    scorer.load(tmp_path / "m.onnx")
    with pytest.raises(ScoringError, match="non-finite scores for 2 of 2 rows") as err:
        scorer.predict(np.zeros((2, N_INPUTS), dtype=np.float32))
    assert err.value.status_code == 500


def test_a_model_that_raises_backs_off_and_the_last_good_one_serves(bundle, tmp_path):
    life, service = lifecycle(tmp_path)
    write_desired(tmp_path, desired_for(bundle, version="1"))
    asyncio.run(life.step())
    flat = with_model(bundle, tmp_path / "flat", flat_model)
    write_desired(tmp_path, desired_for(flat, version="2"))
    for _ in range(20):  # the clock does not move: the backoff holds
        asyncio.run(life.step())
    assert service.active.version == "1"
    assert "IndexError" in service.last_model_failure
    assert service.metrics.value("edgeloop_model_failures_total") == 1


def test_rolling_back_to_the_serving_version_clears_the_failure(bundle, tmp_path):
    life, service = lifecycle(tmp_path)
    good = desired_for(bundle, version="1")
    write_desired(tmp_path, good)
    asyncio.run(life.step())
    write_desired(
        tmp_path, good.model_copy(update={"version": "2", "bundle_sha256": "c" * 64})
    )
    asyncio.run(life.step())
    assert service.heartbeat().last_model_failure  # the fleet view: unhealthy
    write_desired(tmp_path, good)  # the controller rolls back
    asyncio.run(life.step())
    assert service.heartbeat().last_model_failure == ""  # healthy again
