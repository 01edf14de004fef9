"""INT4 weight-only for TensorRT on a small real graph: NVIDIA's quantizer (modelopt) writing
blocked INT4 DequantizeLinear weights on the CPU, and the lint's int4 rules on it and on broken
variants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optbuild.errors import OptbuildError
from optbuild.stages.nvidia import int4, lint
from optbuild.stages.nvidia.proxy import qdq_session

HIDDEN = 256  # two blocks of 128 along each weight's reduction axis


def mlp(path: Path) -> Path:
    """x[N, 256] -> MatMul(256x256) -> Relu -> Gemm(transB, 256x256) -> y: two weights int4 can take."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((HIDDEN, HIDDEN)).astype(np.float32) * 0.05, "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((HIDDEN, HIDDEN)).astype(np.float32) * 0.05, "w2")
    b2 = numpy_helper.from_array(np.zeros(HIDDEN, np.float32), "b2")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], "fc1"), helper.make_node("Relu", ["h"], ["r"], "relu"),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], "fc2", transB=1)]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", HIDDEN])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", HIDDEN])], [w1, w2, b2])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def calibration(rows: int = 4) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    return [{"x": rng.standard_normal((2, HIDDEN)).astype(np.float32)} for _ in range(rows)]


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    folder = tmp_path_factory.mktemp("int4")
    source = mlp(folder / "mlp.onnx")
    report = int4.quantize(str(source), str(folder / "int4.onnx"), [], {"calibration_method": "rtn_dq",
                                                                          "block_size": 128})
    return source, folder / "int4.onnx", report


def weight_dequantizers(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type == "DequantizeLinear"]


def test_both_weights_become_blocked_int4_and_the_graph_stays_close_to_float(quantized):
    source, target, report = quantized
    model = onnx.load(str(target))
    constants = {t.name: t for t in model.graph.initializer}
    dqs = weight_dequantizers(model)
    assert len(dqs) == 2 and not [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    for dq in dqs:
        assert constants[dq.input[0]].data_type == TensorProto.INT4
        assert {a.name: a.i for a in dq.attribute}["block_size"] == 128
    assert report["int4_weights"] == 2 and report["block_size"] == 128 and report["calibration_method"] == "rtn_dq"
    assert report["bytes"] < report["bytes_before"] / 3  # 4-bit weights and float scales, from float32
    assert lint.lint(model, "int4") == []
    feeds = {"x": calibration(1)[0]["x"]}
    reference = qdq_session(str(source)).run(None, feeds)[0]
    candidate = qdq_session(str(target)).run(None, feeds)[0]  # ONNX Runtime's CPU provider runs INT4 blocked DQ
    cosine = np.sum(reference * candidate) / np.linalg.norm(reference) / np.linalg.norm(candidate)
    assert cosine > 0.98


def test_awq_lite_calibrates_on_the_data_and_writes_the_same_kind_of_graph(tmp_path: Path):
    source = mlp(tmp_path / "mlp.onnx")
    report = int4.quantize(str(source), str(tmp_path / "awq.onnx"), calibration(),
                           {"calibration_method": "awq_lite", "block_size": 64})
    model = onnx.load(str(tmp_path / "awq.onnx"))
    assert report["calibration_samples"] == 8 and report["int4_weights"] == 2
    assert {a.name: a.i for a in weight_dequantizers(model)[0].attribute}["block_size"] == 64
    assert lint.lint(model, "int4") == []


def test_a_model_without_gemm_weights_is_refused_before_quantizing(tmp_path: Path):
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"], "mm")], "acts",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [4, 4]) for n in "ab"],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [4, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "m.onnx"))
    with pytest.raises(OptbuildError, match="constant weights of MatMul/Gemm") as err:
        int4.quantize(str(tmp_path / "m.onnx"), str(tmp_path / "q.onnx"), [], {"calibration_method": "rtn_dq"})
    assert "\n" not in str(err.value) and not (tmp_path / "q.onnx").exists()


def rules(model: onnx.ModelProto) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for violation in lint.lint(model, "int4"):
        found.setdefault(violation.rule, []).append(violation.node)
    return found


def test_an_activation_qdq_is_not_weight_only(quantized):
    model = onnx.load(str(quantized[1]))
    scale = numpy_helper.from_array(np.array(0.1, np.float32), "act_scale")
    zero = numpy_helper.from_array(np.array(0, np.int8), "act_zero")
    model.graph.initializer.extend([scale, zero])
    fc1 = next(n for n in model.graph.node if n.name == "fc1")
    fc1.input[0] = "x_dq"
    model.graph.node.insert(0, helper.make_node("DequantizeLinear", ["x_q", "act_scale", "act_zero"], ["x_dq"], "x_dq"))
    model.graph.node.insert(0, helper.make_node("QuantizeLinear", ["x", "act_scale", "act_zero"], ["x_q"], "x_q"))
    assert rules(model)["weight-only"] == ["x_q", "x_dq"]


def test_a_scale_that_does_not_fit_the_blocks_is_named(quantized):
    model = onnx.load(str(quantized[1]))
    dq = weight_dequantizers(model)[0]
    for attribute in dq.attribute:
        if attribute.name == "block_size":
            attribute.i = 32  # the scale still has 2 blocks along 256: wrong twice over
    other = weight_dequantizers(model)[1]
    scale = next(t for t in model.graph.initializer if t.name == other.input[1])
    scale.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(scale)[:1], scale.name))  # one block, not two
    found = rules(model)
    assert sorted(found["blocked-weights"]) == sorted([dq.name, other.name])
    message = lint.grouped(lint.lint(model, "int4"))
    assert message.startswith("blocked-weights: 2 node(s)") and "64 or 128" in message
