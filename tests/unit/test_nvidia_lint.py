"""The TensorRT explicit-quantization lint on small hand-made Q/DQ graphs: each rule fails
naming the node that breaks it, and a well-formed graph passes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optbuild.stages.nvidia.lint import lint


def graph(act_zp=np.int8(0), weight_scale=(0.1, 0.2, 0.3, 0.4), weight_axis=0, drop_q_zp=False,
          dangling=False, int32_bias=False) -> onnx.ModelProto:
    """input → Q → DQ → Conv(weight: int8 → DQ per-channel) → output."""
    init = [
        numpy_helper.from_array(np.array(0.05, np.float32), "act_scale"),
        numpy_helper.from_array(np.array(act_zp), "act_zp"),
        numpy_helper.from_array(np.ones((4, 3, 3, 3), np.int8), "w_q"),
        numpy_helper.from_array(np.array(weight_scale, np.float32), "w_scale"),
        numpy_helper.from_array(np.zeros(len(weight_scale), np.int8), "w_zp"),
    ]
    q_inputs = ["input", "act_scale"] + ([] if drop_q_zp else ["act_zp"])
    nodes = [helper.make_node("QuantizeLinear", q_inputs, ["x_q"], name="quant_input"),
             helper.make_node("DequantizeLinear", ["x_q", "act_scale", "act_zp"], ["x_dq"], name="dequant_input"),
             helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w"], name="dequant_weight",
                              axis=weight_axis)]
    conv_inputs = ["x_dq", "w"]
    if int32_bias:
        init += [numpy_helper.from_array(np.zeros(4, np.int32), "b_q"),
                 numpy_helper.from_array(np.full(4, 0.01, np.float32), "b_scale")]
        nodes.append(helper.make_node("DequantizeLinear", ["b_q", "b_scale"], ["b"], name="dequant_bias"))
        conv_inputs.append("b")
    nodes.append(helper.make_node("Conv", conv_inputs, ["output"], name="conv", pads=[1, 1, 1, 1]))
    if dangling:
        nodes.append(helper.make_node("QuantizeLinear", ["output", "act_scale", "act_zp"], ["out_q"], name="quant_out"))
        nodes.append(helper.make_node("Relu", ["out_q"], ["after"], name="relu_on_int8"))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("after" if dangling else "output", TensorProto.FLOAT, None)],
                          init)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def only(model: onnx.ModelProto) -> tuple[str, str]:
    found = lint(model)
    assert len(found) == 1, [str(v) for v in found]
    return found[0].rule, found[0].node


def test_well_formed_signed_symmetric_graph_passes():
    assert lint(graph()) == []


@pytest.mark.parametrize("zp", [np.uint8(0), np.int8(3)])
def test_unsigned_or_nonzero_zero_point_fails_naming_the_node(zp):
    found = lint(graph(act_zp=zp))
    assert {(v.rule, v.node) for v in found} == {("zero-point", "quant_input"),
                                                  ("zero-point", "dequant_input")}


def test_missing_zero_point_means_uint8_and_fails():
    assert only(graph(drop_q_zp=True)) == ("zero-point", "quant_input")


def test_per_tensor_weight_scale_fails():
    assert only(graph(weight_scale=(0.1,))) == ("per-channel-weights", "dequant_weight")


def test_weight_scales_on_the_wrong_axis_fail():
    assert only(graph(weight_axis=1)) == ("per-channel-weights", "dequant_weight")


def test_quantize_feeding_something_else_than_dequantize_fails():
    assert ("no-dangling", "quant_out") in {(v.rule, v.node) for v in lint(graph(dangling=True))}


def test_int32_bias_dequantize_fails():
    assert only(graph(int32_bias=True)) == ("no-dangling", "dequant_bias")


def test_quantized_operators_fail():
    model = graph()
    model.graph.node.append(helper.make_node("QLinearConv", ["a", "b", "c", "d", "e", "f", "g", "h"], ["i"],
                                             name="qlinear"))
    assert ("qdq-only", "qlinear") in {(v.rule, v.node) for v in lint(model)}


def test_every_violation_is_reported_grouped_by_rule():
    from optbuild.stages.nvidia.lint import Violation, grouped

    found = [Violation("zero-point", f"q{i}", "has a UINT8 zero-point") for i in range(5)]
    found.append(Violation("no-dangling", "dq9", "reads neither a QuantizeLinear nor a constant"))
    assert grouped(found) == ("zero-point: 5 node(s) ('q0', 'q1', 'q2', ...; first: has a UINT8 zero-point); "
                              "no-dangling: 1 node(s) ('dq9'; first: reads neither a QuantizeLinear nor a constant)")


def residual(quantize_conv_output: bool, bias_qdq: bool = False) -> onnx.ModelProto:
    """x → Q/DQ → Conv (float weight behind Q/DQ, per channel) → [Q/DQ?] → Add(·, Q/DQ(x)): a
    residual block in NVIDIA's quantizer's style, or with the main branch quantized too."""
    init = [numpy_helper.from_array(np.array(0.05, np.float32), "s"), numpy_helper.from_array(np.array(0, np.int8), "z"),
            numpy_helper.from_array(np.full(3, 0.01, np.float32), "ws"), numpy_helper.from_array(np.zeros(3, np.int8), "wz"),
            numpy_helper.from_array(np.ones((3, 3, 3, 3), np.float32), "w"),
            numpy_helper.from_array(np.ones(3, np.float32), "b")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q_x"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq_x"),
             helper.make_node("QuantizeLinear", ["w", "ws", "wz"], ["wq"], name="q_w", axis=0),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], name="dq_w", axis=0)]
    conv_inputs = ["xd", "wd"]
    if bias_qdq:
        nodes += [helper.make_node("QuantizeLinear", ["b", "s", "z"], ["bq"], name="q_b"),
                  helper.make_node("DequantizeLinear", ["bq", "s", "z"], ["bd"], name="dq_b")]
        conv_inputs.append("bd")
    nodes.append(helper.make_node("Conv", conv_inputs, ["c"], name="conv", pads=[1, 1, 1, 1]))
    main = "c"
    if quantize_conv_output:
        nodes += [helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"], name="q_c"),
                  helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["cd"], name="dq_c")]
        main = "cd"
    nodes.append(helper.make_node("Add", [main, "xd"], ["y"], name="residual_add"))
    g = helper.make_graph(nodes, "res", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], init)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_float_weights_behind_qdq_and_an_unquantized_main_branch_pass():
    assert lint(residual(quantize_conv_output=False)) == []


def test_a_residual_add_with_its_conv_output_quantized_fails():
    assert only(residual(quantize_conv_output=True)) == ("residual-add", "residual_add")
    assert "straight from Conv 'conv'" in str(lint(residual(quantize_conv_output=True))[0])


def test_a_quantized_bias_fails_as_a_constant_that_is_not_a_weight():
    assert only(residual(quantize_conv_output=False, bias_qdq=True)) == ("constant-qdq", "dq_b")


def fp8(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph with E4M3 zero-points and an E4M3 weight, as an FP8 build stores them."""
    retyped = []
    for tensor in model.graph.initializer:
        if tensor.name in ("act_zp", "w_zp", "w_q"):
            values = numpy_helper.to_array(tensor).astype(np.float32)
            tensor = helper.make_tensor(tensor.name, TensorProto.FLOAT8E4M3FN, values.shape, values.ravel().tolist())
        retyped.append(tensor)
    del model.graph.initializer[:]
    model.graph.initializer.extend(retyped)
    model.opset_import[0].version = 19  # the first opset with float8 Q/DQ
    return model


def test_fp8_graph_passes_as_fp8_and_is_not_mistaken_for_int8():
    assert lint(fp8(graph()), "fp8") == []
    found = lint(fp8(graph()), "int8")
    assert {v.rule for v in found} == {"zero-point", "no-dangling"}
    assert "needs INT8 zero-points" in next(v.message for v in found if v.rule == "zero-point")
    assert {v.rule for v in lint(graph(), "fp8")} == {"zero-point", "no-dangling"}  # and the other way round
