"""INT8 for TensorRT on small real graphs: NVIDIA's quantizer (modelopt) calibrating on the CPU,
SmoothQuant keeping the float function, and taking single layers back out of Q/DQ."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import small_model
from onnx import TensorProto, helper, numpy_helper

from optbuild.errors import OptbuildError
from optbuild.stages.nvidia import int8, lint, smooth
from optbuild.stages.nvidia.proxy import qdq_session

SETTINGS = {"calibration_method": "max", "high_precision": "fp32", "keep_float32_ops": []}


def calibration(rows: int = 8, shape: tuple[int, ...] = (1, 3, 32, 32)) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [{"input": rng.standard_normal(shape).astype(np.float32)} for _ in range(rows)]


def run(model, feeds: dict[str, np.ndarray]) -> np.ndarray:
    return qdq_session(model if isinstance(model, str) else model.SerializeToString()).run(None, feeds)[0]


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    folder = tmp_path_factory.mktemp("int8")
    source = small_model(folder / "small.onnx")
    report = int8.quantize(str(source), str(folder / "int8.onnx"), calibration(), ["first_conv"], SETTINGS)
    return source, folder / "int8.onnx", report


def test_modelopt_quantizes_on_the_cpu_into_a_graph_tensorrt_accepts(quantized):
    source, target, report = quantized
    model = onnx.load(str(target))
    assert lint.lint(model) == []
    assert report["quantizer"].startswith("nvidia-modelopt ") and report["calibration_samples"] == 8
    assert report["kept_float_nodes"] == ["conv1"] and report["quantized_layers"] >= 2
    dequantized_inputs = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    conv1 = next(n for n in model.graph.node if n.name == "conv1")
    conv2 = next(n for n in model.graph.node if n.name == "conv2")
    assert not set(conv1.input) & dequantized_inputs  # kept float: first_conv
    assert set(conv2.input[:2]) <= dequantized_inputs  # activation and weight through Q/DQ
    feeds = calibration(1)[0]
    reference, candidate = run(str(source), feeds), run(str(target), feeds)
    assert np.dot(reference.ravel(), candidate.ravel()) / np.linalg.norm(reference) / np.linalg.norm(candidate) > 0.99


def test_a_layer_taken_out_of_qdq_reads_float_inputs_and_the_rest_stays_quantized(quantized):
    source, target, _ = quantized
    model = onnx.load(str(target))
    partial = int8.dequantized(model, ["conv2"])
    conv2 = next(n for n in partial.graph.node if n.name == "conv2")
    producers = {o: n.op_type for n in partial.graph.node for o in n.output}
    assert all(producers.get(i) != "DequantizeLinear" for i in conv2.input)
    assert any(n.op_type == "QuantizeLinear" for n in partial.graph.node)  # fc keeps its Q/DQ
    assert lint.lint(partial) == []
    every = int8.dequantized(model, [n.name for n in model.graph.node])  # the pooling's input too
    assert not [n for n in every.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    feeds = calibration(1)[0]
    np.testing.assert_allclose(run(every, feeds), run(str(source), feeds), rtol=1e-4, atol=1e-4)


def outlier_model() -> onnx.ModelProto:
    """x [1, 4, 8] (one channel 100x the others) -> MatMul(W [8, 6]) and MatMul(V [8, 3])."""
    rng = np.random.default_rng(1)
    weights = [numpy_helper.from_array(rng.standard_normal((8, 6)).astype(np.float32), "W"),
               numpy_helper.from_array(rng.standard_normal((8, 3)).astype(np.float32), "V")]
    graph = helper.make_graph([helper.make_node("MatMul", ["input", "W"], ["a"], "mm_a"),
                               helper.make_node("MatMul", ["input", "V"], ["b"], "mm_b")], "outliers",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4, 8])],
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 4, 6]),
                               helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 4, 3])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_model_with_nothing_worth_int8_is_refused_with_the_way_out(tmp_path: Path):
    source = tmp_path / "narrow.onnx"
    onnx.save(outlier_model(), str(source))  # K = 8: too narrow for TensorRT's INT8 kernels
    with pytest.raises(OptbuildError, match=r"no layer TensorRT would run faster in INT8 .*precision=fp16"):
        int8.quantize(str(source), str(tmp_path / "int8.onnx"), calibration(4, (1, 4, 8)), [], SETTINGS)


def test_smoothquant_keeps_the_float_function_and_flattens_the_outlier_channel():
    rng = np.random.default_rng(2)
    batches = [{"input": (rng.standard_normal((1, 4, 8)) * np.array([100] + [1] * 7)).astype(np.float32)}
               for _ in range(4)]
    model = outlier_model()
    smoothed, record = smooth.smooth(model, batches, 0.9)
    assert record["smoothed_activations"] == 1  # both MatMuls read one activation: one shared scale
    assert [n.op_type for n in smoothed.graph.node] == ["Mul", "MatMul", "MatMul"]
    for batch in batches:
        for before, after in zip(qdq_session(model.SerializeToString()).run(None, batch),
                                 qdq_session(smoothed.SerializeToString()).run(None, batch)):
            np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-3)
    scale = numpy_helper.to_array(next(t for t in smoothed.graph.initializer if t.name.endswith("_smooth_scale")))
    peaks = np.max([np.abs(b["input"]).reshape(-1, 8).max(0) for b in batches], axis=0) * scale
    assert peaks.max() / peaks.min() < 10  # was ~100 before smoothing


def pooled_qdq_model() -> onnx.ModelProto:
    """x -Q/DQ-> MaxPool -Q/DQ-> Flatten -> Gemm a (INT8 weight) and Gemm b: the Gemms read a
    quantized tensor only through the pool and the flatten (as modelopt leaves a small CNN)."""
    rng = np.random.default_rng(3)
    scale = numpy_helper.from_array(np.array(0.05, np.float32), "s")
    zero = numpy_helper.from_array(np.array(0, np.int8), "z")
    weight = numpy_helper.from_array(rng.integers(-127, 127, (4, 16)).astype(np.int8), "wq")
    weight_scale = numpy_helper.from_array(np.full(4, 0.01, np.float32), "ws")
    weight_zero = numpy_helper.from_array(np.zeros(4, np.int8), "wz")
    nodes = [helper.make_node("QuantizeLinear", ["input", "s", "z"], ["xq"], "x_q"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], "x_dq"),
             helper.make_node("MaxPool", ["xd"], ["pooled"], "pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("QuantizeLinear", ["pooled", "s", "z"], ["pq"], "pool_q"),
             helper.make_node("DequantizeLinear", ["pq", "s", "z"], ["pd"], "pool_dq"),
             helper.make_node("Flatten", ["pd"], ["flat"], "flatten"),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], "w_dq", axis=0),
             helper.make_node("Gemm", ["flat", "w"], ["a"], "gemm_a", transB=1),
             helper.make_node("Gemm", ["flat", "w"], ["b"], "gemm_b", transB=1)]
    graph = helper.make_graph(nodes, "pooled", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in "ab"],
                              [scale, zero, weight, weight_scale, weight_zero])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])


def test_a_layer_behind_a_pool_reads_float_and_the_pools_other_reader_stays_quantized():
    model = pooled_qdq_model()
    assert int8.quantized_layers(model) == ["gemm_a", "gemm_b"]  # the pool and flatten go with their reader
    x = {"input": np.random.default_rng(4).uniform(0, 3, (1, 1, 8, 8)).astype(np.float32)}
    weight = numpy_helper.to_array(model.graph.initializer[2]).astype(np.float32) * 0.01
    exact = x["input"].reshape(1, 1, 4, 2, 4, 2).max(axis=(3, 5)).reshape(1, 16) @ weight.T
    quantized = qdq_session(model.SerializeToString()).run(None, x)
    partial = int8.dequantized(model, ["gemm_a"])
    onnx.checker.check_model(partial)
    float_a, still_b = qdq_session(partial.SerializeToString()).run(None, x)
    np.testing.assert_allclose(float_a, exact, rtol=1e-5, atol=1e-5)
    assert np.abs(quantized[0] - exact).max() > 1e-3  # the Q/DQ path really rounds
    np.testing.assert_array_equal(still_b, quantized[1])
    assert [n.op_type for n in model.graph.node].count("MaxPool") == 1  # the input model is untouched
