"""FP16 / BF16 as graph conversions for a strongly typed TensorRT network.

Inputs and outputs stay float32 (callers keep feeding float32); weights and activations become
float16 / bfloat16. Kept in float32: the recipe's op types (target.tensorrt.half_keep_float32_ops:
normalisation, softmax, reductions by default) and, for float16, what would overflow: a fixed list
of overflow-prone op types, every node whose output on the calibration data comes within
OVERFLOW_HEADROOM of float16's largest value, and every node reading a constant float16 cannot
hold (a BatchNorm variance of 1e7 would be clamped to 65504, silently changing the model). All
of these are recorded in the manifest.

The FP16 conversion is ONNX Runtime's float16 converter (onnxruntime.transformers.float16, the
same code as onnxconverter-common's). NVIDIA's AutoCast (modelopt.onnx.autocast) was measured
against it and is not used: same accuracy, slower, and it keeps MiniLM's embedding table in
float32 because token ids exceed its range limit (docs/nvidia.md, benchmarks/fp16_autocast.py). BF16 reuses it and retypes its float16 tensors as bfloat16,
re-rounding weights from their float32 originals; the graph is first moved to opset 22, the
first opset whose Conv/pooling accept bfloat16. ONNX Runtime has no bfloat16 Conv on CPU, so the
CPU proxy of a BF16 graph is `emulate_bfloat16`: the same graph in float32 with every bfloat16
tensor rounded to bfloat16 where it is produced (float32 accumulation, as on the GPU).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from optbuild.passes.onnx_io import cpu_session

FP16_MAX = 65504.0
OVERFLOW_HEADROOM = 4.0  # block a node whose calibration |max| exceeds FP16_MAX / 4
OVERFLOW_PRONE_OPS = ("Exp", "Pow", "ReduceSumSquare", "ReduceL2", "ReduceLogSumExp", "Softplus")
BF16_OPSET = 22


def float_outputs_max(model: Any, batches: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """|max| of every float intermediate tensor over the batches, keyed by producing node name."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    probe = onnx.ModelProto()
    probe.CopyFrom(inferred)
    owner = {}
    existing = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        for out in node.output:
            if types.get(out) == onnx.TensorProto.FLOAT:
                owner[out] = node.name
                if out not in existing:
                    probe.graph.output.append(onnx.helper.make_tensor_value_info(out, onnx.TensorProto.FLOAT, None))
    session = cpu_session(probe)
    names = [o.name for o in session.get_outputs()]
    peaks: dict[str, float] = {}
    for batch in batches:
        for name, value in zip(names, session.run(None, batch)):
            if name in owner and value.size:
                node = owner[name]
                peaks[node] = max(peaks.get(node, 0.0), float(np.abs(value).max()))
    return peaks


def _toposorted(model: Any) -> Any:
    """The converter appends its input Casts at the end; ONNX requires topological order."""
    import onnx_graphsurgeon as gs

    graph = gs.import_onnx(model)
    graph.toposort()
    return gs.export_onnx(graph)


def out_of_range_constants(model: Any, limit: float = FP16_MAX) -> list[str]:
    """Nodes reading a float32 constant (initializer or Constant node) with a finite value beyond
    ±limit: converting that constant would clamp it."""
    from onnx import TensorProto, numpy_helper

    large = {t.name for t in model.graph.initializer
             if t.data_type == TensorProto.FLOAT and _beyond(numpy_helper.to_array(t), limit)}
    for node in model.graph.node:
        if node.op_type == "Constant":
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None and value.data_type == TensorProto.FLOAT and _beyond(numpy_helper.to_array(value), limit):
                large.update(node.output)
    return sorted(n.name for n in model.graph.node if n.op_type != "Constant" and large & set(n.input))


def _beyond(values: np.ndarray, limit: float) -> bool:
    finite = values[np.isfinite(values)]
    return bool(finite.size) and float(np.abs(finite).max()) > limit


def _named(model: Any) -> Any:
    """Every node with a name: the converter blocks nodes by name."""
    for index, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{index}"
    return model


def to_float16(model: Any, batches: list[dict[str, np.ndarray]], keep_float32_ops: Any = (),
               guard_overflow: bool = True) -> tuple[Any, dict[str, Any]]:
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = _named(model)
    peaks = float_outputs_max(model, batches) if batches and guard_overflow else {}
    limit = FP16_MAX / OVERFLOW_HEADROOM
    overflowing = sorted(node for node, peak in peaks.items() if peak > limit)
    large_constants = out_of_range_constants(model) if guard_overflow else []
    prone = OVERFLOW_PRONE_OPS if guard_overflow else ()
    chosen = tuple(keep_float32_ops)
    blocked_types = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(prone) | set(chosen))
    blocked_nodes = sorted(set(overflowing) | set(large_constants))
    kept = sorted({n.name for n in model.graph.node if n.op_type in set(prone) | set(chosen)} | set(blocked_nodes))
    converted = convert_float_to_float16(model, keep_io_types=True, op_block_list=blocked_types,
                                         node_block_list=blocked_nodes)
    return _toposorted(converted), {
        "converter": "onnxruntime.transformers.float16",
        "io_types": "float32",
        "overflow_prone_op_types": list(prone),
        "kept_float32_op_types": list(chosen),
        "kept_float32_for_constants": large_constants,
        "kept_float32_nodes": kept,
        "overflow_measured_on_samples": int(sum(len(next(iter(b.values()))) for b in batches))
        if guard_overflow else 0,
        "overflow_limit": limit if guard_overflow else None,
    }


def to_bfloat16(model: Any, batches: list[dict[str, np.ndarray]] | None = None,
                keep_float32_ops: Any = ()) -> tuple[Any, dict[str, Any]]:
    import ml_dtypes
    import onnx
    from onnx import TensorProto, numpy_helper

    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < BF16_OPSET:
        model = onnx.version_converter.convert_version(model, BF16_OPSET)
    originals = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == TensorProto.FLOAT}
    half, report = to_float16(model, [], keep_float32_ops, guard_overflow=False)  # bfloat16 has float32's range

    def bf16(tensor: Any) -> Any:
        values = originals.get(tensor.name)
        values = numpy_helper.to_array(tensor).astype(np.float32) if values is None else values
        return numpy_helper.from_array(values.astype(ml_dtypes.bfloat16), tensor.name)

    for i, tensor in enumerate(half.graph.initializer):
        if tensor.data_type == TensorProto.FLOAT16:
            half.graph.initializer[i].CopyFrom(bf16(tensor))
    for node in half.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT16:
                attr.t.CopyFrom(bf16(attr.t))
            elif attr.name in ("to", "dtype") and attr.type == onnx.AttributeProto.INT and attr.i == TensorProto.FLOAT16:
                attr.i = TensorProto.BFLOAT16
    for value in list(half.graph.value_info) + list(half.graph.input) + list(half.graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT16:
            value.type.tensor_type.elem_type = TensorProto.BFLOAT16
    return half, {**report, "converter": report["converter"] + " (retyped to bfloat16)", "opset": max(opset, BF16_OPSET)}


def emulate_bfloat16(model: Any) -> Any:
    """A float32 graph that rounds to bfloat16 wherever the real graph produces a bfloat16
    tensor: ONNX Runtime's CPU proxy for a BF16 graph."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    typed = onnx.shape_inference.infer_shapes(model)
    bf16_tensors = {v.name for v in typed.graph.value_info if v.type.tensor_type.elem_type == TensorProto.BFLOAT16}
    emulated = onnx.ModelProto()
    emulated.CopyFrom(typed)
    graph = emulated.graph
    for i, tensor in enumerate(graph.initializer):
        if tensor.data_type == TensorProto.BFLOAT16:
            values = numpy_helper.to_array(tensor).astype(np.float32)
            graph.initializer[i].CopyFrom(numpy_helper.from_array(values, tensor.name))
    nodes = []
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.BFLOAT16:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float32), attr.t.name))
        nodes.append(node)
        for slot, out in enumerate(node.output):
            if out not in bf16_tensors:
                continue
            raw = f"{out}__fp32"
            node.output[slot] = raw
            if node.op_type == "Cast":  # a Cast to bfloat16 already rounds; bring it back to float32
                nodes.append(helper.make_node("Cast", [raw], [out], to=TensorProto.FLOAT, name=f"{out}__to_fp32"))
            else:
                nodes.append(helper.make_node("Cast", [raw], [f"{out}__bf16"], to=TensorProto.BFLOAT16,
                                              name=f"{out}__round_bf16"))
                nodes.append(helper.make_node("Cast", [f"{out}__bf16"], [out], to=TensorProto.FLOAT,
                                              name=f"{out}__to_fp32"))
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    return emulated
