"""Facts about a model file, read without running it: interface, opsets, op histogram,
parameters, quantization. ONNX is read without its weights (a 2 GB model inspects quickly);
an OpenVINO IR is read with OpenVINO. Neither imports torch."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from optbuild.errors import OptbuildError, first_line

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def onnx_facts(path: Path, data_required: bool = True) -> dict[str, Any]:
    """`data_required=False` for a file whose external data may not sit next to it (a build
    cache blob): the weights' sizes come from tensor shapes either way."""
    import onnx

    from optbuild.passes.onnx_io import io_summary
    from optbuild.sources.onnx_file import external_data_files

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # noqa: BLE001 - protobuf errors mean "not a model"
        raise OptbuildError(f"{path} is not an ONNX model ({type(err).__name__}); give a .onnx file, "
                            "a model.xml or an artifact directory") from err
    try:
        data_files = external_data_files(path)
    except OptbuildError:
        if data_required:
            raise
        data_files = []
    tensors = _onnx_tensors(model.graph)
    ops = Counter(n.op_type for n in _onnx_nodes(model.graph))
    return {
        "kind": "onnx",
        "path": str(path),
        "bytes": path.stat().st_size + sum(p.stat().st_size for p in data_files),
        "external_data": [p.name for p in data_files],
        "ir_version": model.ir_version,
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        **io_summary(model),
        "nodes": sum(ops.values()),
        "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "parameters": _parameter_stats((onnx.helper.tensor_dtype_to_np_dtype(t.data_type), list(t.dims))
                                       for t in tensors.values()),
        "quantization": _qdq_types(model, tensors),
    }


def _onnx_nodes(graph: Any) -> list[Any]:
    nodes = list(graph.node)
    for node in graph.node:
        for attribute in node.attribute:
            for sub in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                nodes += _onnx_nodes(sub)
    return nodes


def _onnx_tensors(graph: Any) -> dict[str, Any]:
    """Weights: initializers and Constant node values, by name."""
    tensors = {t.name: t for t in graph.initializer}
    for node in _onnx_nodes(graph):
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.HasField("t"):
                    tensors[node.output[0]] = attribute.t
    return tensors


def _parameter_stats(items: Any) -> dict[str, Any]:
    count, size, by_dtype = 0, 0, Counter[str]()
    for dtype, dims in items:
        elements = int(np.prod(dims)) if dims else 1
        count += elements
        size += elements * np.dtype(dtype).itemsize
        by_dtype[np.dtype(dtype).name] += elements
    return {"count": count, "bytes": size, "by_dtype": dict(sorted(by_dtype.items()))}


def _qdq_types(model: Any, tensors: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Q/DQ nodes by quantized type (the zero point's type; uint8 when a Q has none)."""
    import onnx

    known = {v.name: v.type.tensor_type.elem_type for v in
             list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output)}
    known.update({name: t.data_type for name, t in tensors.items()})
    counts: dict[str, Counter] = {op: Counter() for op in QDQ_OPS}
    for node in _onnx_nodes(model.graph):
        if node.op_type not in QDQ_OPS:
            continue
        zero = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if zero is not None and zero in known:
            kind = known[zero]
        elif node.op_type == "DequantizeLinear" and node.input[0] in known:
            kind = known[node.input[0]]
        else:
            kind = onnx.TensorProto.UINT8 if node.op_type == "QuantizeLinear" else 0
        name = onnx.helper.tensor_dtype_to_np_dtype(kind).name if kind else "unknown"
        counts[node.op_type][name] += 1
    return {op: dict(sorted(c.items())) for op, c in counts.items() if c}


def openvino_facts(xml: Path) -> dict[str, Any]:
    try:
        import openvino as ov
    except ImportError as err:
        raise OptbuildError("inspecting an OpenVINO IR needs openvino: pip install 'optbuild[intel]'") from err
    import xml.etree.ElementTree as ET

    try:
        model = ov.Core().read_model(str(xml))
        version = ET.parse(xml).getroot().get("version")
    except Exception as err:  # noqa: BLE001 - a broken IR reads as any of several errors
        first = first_line(err)
        raise OptbuildError(f"{xml} is not a readable OpenVINO IR: {first}") from err
    ops = Counter(op.get_type_name() for op in model.get_ordered_ops())
    constants = [op for op in model.get_ordered_ops() if op.get_type_name() == "Constant"]
    levels = Counter(int(op.get_attributes().get("levels", 0)) for op in model.get_ordered_ops()
                     if op.get_type_name() == "FakeQuantize")
    weights = xml.with_suffix(".bin")
    return {
        "kind": "openvino",
        "path": str(xml),
        "bytes": xml.stat().st_size + (weights.stat().st_size if weights.is_file() else 0),
        "ir_version": int(version) if version and version.isdigit() else version,
        "inputs": [_ov_port(p) for p in model.inputs],
        "outputs": [_ov_port(p) for p in model.outputs],
        "nodes": sum(ops.values()),
        "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "parameters": _parameter_stats((_ov_dtype(c.get_output_element_type(0)), list(c.get_output_shape(0)))
                                       for c in constants),
        "quantization": {"FakeQuantize": {f"{n} levels": c for n, c in sorted(levels.items())}} if levels else {},
    }


def _ov_port(port: Any) -> dict[str, Any]:
    shape = [d.get_length() if d.is_static else "?" for d in port.get_partial_shape()]
    names = sorted(port.get_names())
    return {"name": names[0] if names else port.get_any_name(), "dtype": port.get_element_type().get_type_name(),
            "shape": shape}


def _ov_dtype(element_type: Any) -> str:
    """numpy name of an OpenVINO element type (bf16 and sub-byte types are sized as their bytes)."""
    name = element_type.get_type_name()
    table = {"f32": "float32", "f16": "float16", "bf16": "uint16", "f64": "float64", "i8": "int8",
             "u8": "uint8", "i16": "int16", "u16": "uint16", "i32": "int32", "u32": "uint32",
             "i64": "int64", "u64": "uint64", "boolean": "bool"}
    return table.get(name, "uint8")
