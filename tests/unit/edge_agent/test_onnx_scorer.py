"""The scorer against tiny ONNX models built by hand (nothing downloaded)."""

import hashlib
import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgeloop_agent.contracts import MANIFEST_FILE, MODEL_FILE, BundleError
from edgeloop_agent.scoring.model_store import ModelStore
from edgeloop_agent.scoring.onnx import OnnxScorer

from .conftest import desired_for


def linear_model(path, n_inputs: int, output: str = "probabilities") -> None:
    """p = sigmoid(sum(x)) as [1 - p, p]: a two-column probability output."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, n_inputs])
    y = helper.make_tensor_value_info(output, TensorProto.FLOAT, [None, 2])
    ones = helper.make_tensor("w", TensorProto.FLOAT, [n_inputs, 1], [1.0] * n_inputs)
    nodes = [
        helper.make_node("MatMul", ["input", "w"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["p"]),
        helper.make_node("Neg", ["p"], ["neg"]),
        helper.make_node(
            "Constant",
            [],
            ["one"],
            value=helper.make_tensor("c", TensorProto.FLOAT, [], [1.0]),
        ),
        helper.make_node("Add", ["neg", "one"], ["q"]),
        helper.make_node("Concat", ["q", "p"], [output], axis=1),
    ]
    graph = helper.make_graph(nodes, "linear", [x], [y], initializer=[ones])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def test_hand_built_model_scores_as_expected(tmp_path):
    linear_model(tmp_path / "m.onnx", 3)
    scorer = OnnxScorer()
    scorer.load(tmp_path / "m.onnx")
    scores = scorer.predict(np.array([[0, 0, 0], [1, 1, 1]], dtype=np.float32))
    np.testing.assert_allclose(scores, [0.5, 1 / (1 + np.exp(-3))], rtol=1e-6)
    scorer.unload()
    with pytest.raises(BundleError, match="no model loaded"):
        scorer.predict(np.zeros((1, 3), dtype=np.float32))


def test_model_without_probabilities_output_is_refused(tmp_path):
    linear_model(tmp_path / "m.onnx", 3, output="scores")
    with pytest.raises(
        BundleError, match="expected one input and a 'probabilities' output"
    ):
        OnnxScorer().load(tmp_path / "m.onnx")


def test_bundle_whose_model_takes_another_input_width_is_refused(bundle, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(bundle, bad)
    linear_model(bad / MODEL_FILE, 5)
    data = json.loads((bad / MANIFEST_FILE).read_text())
    data["model_sha256"] = hashlib.sha256((bad / MODEL_FILE).read_bytes()).hexdigest()
    (bad / MANIFEST_FILE).write_text(json.dumps(data))
    store = ModelStore(tmp_path / "cache")
    desired = desired_for(bad)
    with pytest.raises(BundleError, match="model takes 5 inputs, manifest lists 32"):
        store.load(store.fetch(desired), desired)
