"""TensorRT explicit-quantization lint for an INT8 or FP8 ONNX graph.

TensorRT builds INT8 and FP8 only from explicit QuantizeLinear/DequantizeLinear pairs and
supports only symmetric signed INT8 (or FP8 E4M3) for them. The rules:

- `qdq-only`: no QLinear*/ConvInteger/MatMulInteger ops and no Q/DQ outside the ONNX domain;
- `zero-point`: every Q/DQ has a zero-point of the graph's type (INT8, or FLOAT8E4M3FN for FP8;
  a missing one means UINT8) that is 0;
- `per-channel-weights`: weight DQs have one scale per output channel on that op's output-channel
  axis (Conv 0, ConvTranspose 1, Gemm 0 with transB else 1, MatMul 1); activation scales are
  per-tensor;
- `no-dangling`: every Q feeds only DQs, every DQ reads a Q or an INT8 constant (no INT32 bias DQ:
  TensorRT has none);
- `constant-qdq`: a quantized constant is a weight (the weight input of Conv/ConvTranspose/Gemm/
  MatMul), never a bias or another constant operand;
- `residual-add`: no Add has every input quantized while one of them comes straight from a
  weighted op: TensorRT fuses Conv+Add only when the weighted op's output stays unquantized and
  the other (residual) input carries the Q/DQ (its explicit-quantization guide).

Weights may be stored as INT8 constants (DQ only) or as float constants behind a Q/DQ pair
(NVIDIA's quantizer does the latter); both are checked the same way. Every violation is
reported; `grouped` summarises them by rule.

INT4 is weight-only in TensorRT (INT4 activations do not exist there), with block scales only.
In `int4` mode the rules are `qdq-only` and `zero-point` as above (INT4 zero-points), and:

- `weight-only`: no QuantizeLinear at all, and every DequantizeLinear reads a constant;
- `blocked-weights`: each DQ reads an INT4 constant with a `block_size` TensorRT takes (64 or
  128) on the consumer's reduction axis (MatMul: the weight's second-to-last, Gemm: 1 with transB
  else 0), and a constant scale of the weight's shape with that axis divided into blocks;
- `constant-qdq`: as above, an INT4 constant feeds only the weight input of MatMul/Gemm.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

QDQ = ("QuantizeLinear", "DequantizeLinear")
WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
RULES = ("qdq-only", "zero-point", "per-channel-weights", "no-dangling", "constant-qdq", "residual-add")
INT4_RULES = ("qdq-only", "zero-point", "weight-only", "blocked-weights", "constant-qdq")
INT4_BLOCK_SIZES = (64, 128)  # TensorRT's INT4 block quantization (its quantized-types guide)
_INTEGER_OPS = ("ConvInteger", "MatMulInteger", "DynamicQuantizeLinear", "MatMulNBits")


@dataclass(frozen=True)
class Violation:
    rule: str
    node: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: node '{self.node}' {self.message}"


def _weight_axis(consumer: Any, slot: int, rank: int) -> int | None:
    """The output-channel axis of a weight read by `consumer` at input `slot` (None: not a weight)."""
    if consumer.op_type == "Conv" and slot == 1:
        return 0
    if consumer.op_type == "ConvTranspose" and slot == 1:
        return 1
    if consumer.op_type == "Gemm" and slot == 1:
        trans_b = next((a.i for a in consumer.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    if consumer.op_type == "MatMul" and slot == 1:
        return rank - 1
    return None


class _Graph:
    """Index of a graph for the rules: constants, producers and consumers by tensor name."""

    def __init__(self, model: Any, element: int) -> None:
        graph = model.graph
        self.element = element  # the quantized type's TensorProto id
        self.constants = {t.name: t for t in graph.initializer}
        for node in graph.node:  # Constant nodes are constants too
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.constants[node.output[0]] = node.attribute[0].t
        self.producers = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list[tuple[Any, int]]] = defaultdict(list)
        for node in graph.node:
            for slot, name in enumerate(node.input):
                self.consumers[name].append((node, slot))
        self.outputs = {o.name for o in graph.output}

    def array(self, name: str) -> np.ndarray | None:
        from onnx import numpy_helper

        return numpy_helper.to_array(self.constants[name]) if name in self.constants else None


# The zero-point (and stored weight) type TensorRT reads for each quantized precision.
ZERO_POINT_TYPES = {"int8": "INT8", "fp8": "FLOAT8E4M3FN", "int4": "INT4"}


def lint(model: Any, mode: str = "int8") -> list[Violation]:
    """Every violation of the rules in a graph quantized to `mode` (int8, fp8 or int4)."""
    import onnx

    graph, found = _Graph(model, getattr(onnx.TensorProto, ZERO_POINT_TYPES[mode])), []
    for node in model.graph.node:
        label = node.name or f"{node.op_type}:{node.output[0]}"
        if node.op_type.startswith("QLinear") or node.op_type in _INTEGER_OPS:
            found.append(Violation("qdq-only", label, f"is {node.op_type}: TensorRT needs Q/DQ pairs, "
                                                      "not quantized operators"))
            continue
        if node.op_type not in QDQ:
            continue
        if node.domain not in ("", "ai.onnx"):
            found.append(Violation("qdq-only", label, f"is {node.op_type} from domain '{node.domain}': "
                                                      "use the standard ONNX op"))
        found += _zero_point(graph, node, label)
        if mode == "int4":
            found += _int4(graph, node, label)
            continue
        scale = graph.array(node.input[1])
        if scale is None:
            found.append(Violation("per-channel-weights", label, "has a scale that is not a constant"))
        elif node.op_type == "QuantizeLinear":
            found += _quantize(graph, node, label, scale)
        else:
            found += _dequantize(graph, node, label, scale)
    found += _residual_adds(model, graph)
    return found


def _zero_point(graph: _Graph, node: Any, label: str) -> list[Violation]:
    import onnx

    zero_point = node.input[2] if len(node.input) > 2 and node.input[2] else None
    if zero_point is None:
        return [] if node.op_type != "QuantizeLinear" else [Violation(
            "zero-point", label, "has no zero-point, which means UINT8: give a signed zero-point of 0")]
    if zero_point not in graph.constants:
        return [Violation("zero-point", label, "has a zero-point that is not a constant")]
    zp, zp_type = graph.array(zero_point), graph.constants[zero_point].data_type
    if zp is not None and (zp_type != graph.element or np.any(zp.astype(np.float32) != 0)):
        kind, wanted = onnx.TensorProto.DataType.Name(zp_type), onnx.TensorProto.DataType.Name(graph.element)
        return [Violation("zero-point", label, f"has a {kind} zero-point with values "
                                               f"{np.unique(zp.astype(np.float32))[:4].tolist()}: TensorRT needs "
                                               f"{wanted} zero-points equal to 0")]
    return []


def _quantize(graph: _Graph, node: Any, label: str, scale: np.ndarray) -> list[Violation]:
    found = []
    constant = node.input[0] in graph.constants
    if scale.size != 1 and not constant:
        found.append(Violation("per-channel-weights", label, f"quantizes an activation with {scale.size} "
                                                             "scales: use one"))
    users = graph.consumers.get(node.output[0], [])
    if not users or any(u.op_type != "DequantizeLinear" for u, _ in users) or node.output[0] in graph.outputs:
        found.append(Violation("no-dangling", label, "does not feed only DequantizeLinear nodes"))
    return found


def _dequantize(graph: _Graph, node: Any, label: str, scale: np.ndarray) -> list[Violation]:
    """A DQ of a Q (activation) or of a constant (weight)."""
    weight = graph.array(node.input[0])
    if weight is None:
        source = graph.producers.get(node.input[0])
        if source is None or source.op_type != "QuantizeLinear":
            return [Violation("no-dangling", label, "reads neither a QuantizeLinear nor a constant")]
        float_weight = graph.array(source.input[0])
        if float_weight is not None:  # a float weight behind Q/DQ
            return _weight(graph, node, label, scale, float_weight)
        if scale.size != 1:
            return [Violation("per-channel-weights", label, f"dequantizes an activation with {scale.size} "
                                                            "scales: use one")]
        return []
    if graph.constants[node.input[0]].data_type != graph.element:
        return [Violation("no-dangling", label, f"dequantizes a {weight.dtype} constant (e.g. an INT32 bias): "
                                                "TensorRT only dequantizes the quantized type here; keep it float")]
    return _weight(graph, node, label, scale, weight)


def _weight(graph: _Graph, node: Any, label: str, scale: np.ndarray, weight: np.ndarray) -> list[Violation]:
    """A DQ of a constant: it must feed weight inputs, with one scale per output channel."""
    users = graph.consumers.get(node.output[0], [])
    axes = {_weight_axis(user, slot, weight.ndim) for user, slot in users}
    axis = axes.pop() if len(axes) == 1 else None
    if not users:
        return [Violation("no-dangling", label, "has no consumer")]
    if axis is None:
        what = ", ".join(sorted({f"{u.op_type}[{s}]" for u, s in users}))
        return [Violation("constant-qdq", label, f"quantizes a constant that feeds {what}, not the weight input of "
                                                 "a Conv/ConvTranspose/Gemm/MatMul (a bias or other constant): "
                                                 "keep it float")]
    declared = next((a.i for a in node.attribute if a.name == "axis"), 1)
    declared = declared % weight.ndim if weight.ndim else 0
    channels = weight.shape[axis] if weight.ndim else 1
    if scale.size != channels or (scale.size > 1 and declared != axis):
        return [Violation("per-channel-weights", label, f"has {scale.size} scale(s) on axis {declared}; the "
                                                        f"weight needs {channels} on axis {axis} (one per output "
                                                        "channel)")]
    return []


def _int4(graph: _Graph, node: Any, label: str) -> list[Violation]:
    """INT4 is weight-only: a DQ of an INT4 constant with block scales, and no Q at all."""
    if node.op_type == "QuantizeLinear":
        return [Violation("weight-only", label, "quantizes at run time: INT4 in TensorRT is weight-only; store the "
                                                "weight as an INT4 constant read by DequantizeLinear alone")]
    weight = graph.constants.get(node.input[0])
    if weight is None:
        return [Violation("weight-only", label, "dequantizes a tensor computed at run time (an activation): INT4 in "
                                                "TensorRT is weight-only")]
    if weight.data_type != graph.element:
        import onnx

        kind = onnx.TensorProto.DataType.Name(weight.data_type)
        return [Violation("blocked-weights", label, f"dequantizes a {kind} constant: an int4 graph stores its "
                                                    "quantized weights as INT4")]
    users = graph.consumers.get(node.output[0], [])
    axes = {_reduction_axis(user, slot, len(weight.dims)) for user, slot in users}
    if not users or None in axes:
        what = ", ".join(sorted({f"{u.op_type}[{s}]" for u, s in users})) or "nothing"
        return [Violation("constant-qdq", label, f"dequantizes an INT4 constant that feeds {what}, not the weight "
                                                 "input of a MatMul/Gemm")]
    axis = axes.pop()
    if axes or axis is None:
        return [Violation("blocked-weights", label, "feeds MatMul/Gemm weights with different reduction axes")]
    return _blocks(graph, node, label, list(weight.dims), axis)


def _reduction_axis(consumer: Any, slot: int, rank: int) -> int | None:
    """The axis a MatMul/Gemm weight at input `slot` is summed over (None: not a weight)."""
    if consumer.op_type == "MatMul" and slot == 1 and rank >= 2:
        return rank - 2
    if consumer.op_type == "Gemm" and slot == 1 and rank == 2:
        return 1 if next((a.i for a in consumer.attribute if a.name == "transB"), 0) else 0
    return None


def _blocks(graph: _Graph, node: Any, label: str, dims: list[int], axis: int) -> list[Violation]:
    """Block scales TensorRT takes: block_size 64 or 128 on the reduction axis, and a constant
    scale of the weight's shape with that axis counted in blocks."""
    attributes = {a.name: a.i for a in node.attribute}
    block = attributes.get("block_size", 0)
    if block not in INT4_BLOCK_SIZES:
        return [Violation("blocked-weights", label, f"has block_size {block or 'none'}: TensorRT's INT4 weights "
                                                    f"need block scales of {' or '.join(map(str, INT4_BLOCK_SIZES))}")]
    declared = attributes.get("axis", 1) % len(dims)
    if declared != axis:
        return [Violation("blocked-weights", label, f"blocks axis {declared}; the weight is summed over axis {axis} "
                                                    "(its blocks must run along it)")]
    scale = graph.constants.get(node.input[1])
    wanted = [-(-d // block) if i == axis else d for i, d in enumerate(dims)]
    if scale is None or list(scale.dims) != wanted:
        shape = "not a constant" if scale is None else f"shape {list(scale.dims)}"
        return [Violation("blocked-weights", label, f"has a scale of {shape}; a {dims} weight in blocks of {block} "
                                                    f"on axis {axis} needs a constant scale of shape {wanted}")]
    return []


def grouped(violations: list[Violation], examples: int = 3) -> str:
    """Every violation, grouped by rule: how many nodes break it, and the first few named."""
    by_rule: dict[str, list[Violation]] = defaultdict(list)
    for violation in violations:
        by_rule[violation.rule].append(violation)
    parts = []
    for rule, found in by_rule.items():
        names = ", ".join(f"'{v.node}'" for v in found[:examples]) + (", ..." if len(found) > examples else "")
        parts.append(f"{rule}: {len(found)} node(s) ({names}; first: {found[0].message})")
    return "; ".join(parts)


def _residual_adds(model: Any, graph: _Graph) -> list[Violation]:
    found = []
    for node in model.graph.node:
        if node.op_type != "Add" or len(node.input) != 2 or any(i in graph.constants for i in node.input):
            continue
        sources = [_quantized_activation(graph, name) for name in node.input]
        if all(source is not None for source in sources):
            weighted = [s for s in sources if s is not None and s.op_type in WEIGHTED_OPS]
            if weighted:
                label = node.name or f"Add:{node.output[0]}"
                found.append(Violation("residual-add", label, f"has both inputs quantized, one straight from "
                                                              f"{weighted[0].op_type} '{weighted[0].name}': leave "
                                                              "that output float so TensorRT fuses it into the Add"))
    return found


def _quantized_activation(graph: _Graph, name: str) -> Any:
    """The node whose output reaches `name` through Q then DQ (None: `name` is not quantized, or
    is a weight)."""
    dq = graph.producers.get(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        return None
    q = graph.producers.get(dq.input[0])
    if q is None or q.op_type != "QuantizeLinear" or q.input[0] in graph.constants:
        return None
    return graph.producers.get(q.input[0]) or SimpleNamespace(op_type="input", name=q.input[0])


def summary(model: Any, mode: str = "int8") -> dict[str, Any]:
    """What the lint looked at: counts a reader of the manifest can check."""
    ops = [node.op_type for node in model.graph.node]
    return {"quantize_linear": ops.count("QuantizeLinear"), "dequantize_linear": ops.count("DequantizeLinear"),
            "rules": list(INT4_RULES if mode == "int4" else RULES), "passed": True}
