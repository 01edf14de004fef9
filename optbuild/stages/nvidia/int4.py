"""INT4 weight-only for TensorRT: NVIDIA TensorRT Model Optimizer's ONNX INT4 quantization.

`modelopt.onnx.quantization.quantize(quantize_mode="int4")` stores the constant weight of each
MatMul/Gemm as INT4 behind a blocked DequantizeLinear (one float scale per `block_size` weights
along the reduction axis, no zero-point: symmetric), opset 21; activations stay float, so there
is no activation Q/DQ and TensorRT runs the GEMM in float on dequantized weights (weight-only).
Its methods: `awq_lite` and `awq_clip` search activation-aware scales or clips on the calibration
set, run here on ONNX Runtime's CPU provider; `rtn_dq` rounds to nearest without data.

Packing the INT4 weights imports `cppimport`, which compiles a small C++ extension on first use
(see the Makefile's MODELOPT list).
"""

from __future__ import annotations

import logging
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from optbuild.errors import OptbuildError, first_line
from optbuild.stages.nvidia.int8 import NoGpuProbe, calibration_arrays, named

GEMM_OPS = ("MatMul", "Gemm")


def quantizable_weights(model: Any) -> list[str]:
    """The MatMul/Gemm nodes whose weight modelopt's INT4 path takes: input 1 an initializer of
    rank 2 or more, input 0 not a constant (its own rule, graph_utils._find_int4_quantizable_weights)."""
    initializers = {t.name: t for t in model.graph.initializer}
    return [node.name for node in model.graph.node
            if node.op_type in GEMM_OPS and len(node.input) > 1 and node.input[0] not in initializers
            and node.input[1] in initializers and len(initializers[node.input[1]].dims) >= 2]


def untransposed(model: Any) -> int:
    """Rewrite each Gemm with transB=1 on a constant weight to transB=0 with the weight transposed
    (the same function), so its INT4 blocks run along the reduction axis as TensorRT's weight-only
    GEMMs read them: modelopt's round-to-nearest blocks axis 0, which for a [N, K] weight is N.
    Returns how many were rewritten."""
    from onnx import numpy_helper

    initializers = {t.name: t for t in model.graph.initializer}
    rewritten = 0
    for node in model.graph.node:
        trans_b = next((a for a in node.attribute if a.name == "transB"), None)
        if node.op_type != "Gemm" or trans_b is None or not trans_b.i or node.input[1] not in initializers:
            continue
        weight = numpy_helper.to_array(initializers[node.input[1]])
        if weight.ndim != 2:
            continue
        name = f"{node.input[1]}_transposed_{node.name}"  # a new constant: others may read the original
        model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight.T), name))
        node.input[1], trans_b.i = name, 0
        rewritten += 1
    used = {name for node in model.graph.node for name in node.input} | {o.name for o in model.graph.output}
    kept = [t for t in model.graph.initializer if t.name in used]
    if len(kept) != len(model.graph.initializer):  # the originals only the rewritten Gemms read
        del model.graph.initializer[:]
        model.graph.initializer.extend(kept)
    return rewritten


def int4_weights(model: Any) -> list[str]:
    """The INT4 constants the graph dequantizes: what was quantized."""
    import onnx

    int4 = {t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT4}
    return [node.input[0] for node in model.graph.node if node.op_type == "DequantizeLinear" and node.input[0] in int4]


def quantize(source: str, target: str, batches: list[dict[str, np.ndarray]], settings: dict[str, Any]) -> dict[str, Any]:
    """Quantize the ONNX file `source` into `target`. `settings`: calibration_method (awq_lite,
    awq_clip or rtn_dq) and block_size (64 or 128). `batches` may be empty for rtn_dq."""
    import onnx

    model = named(onnx.load(source))
    if not quantizable_weights(model):
        raise OptbuildError("precision int4 quantizes the constant weights of MatMul/Gemm nodes, and this model has "
                            "none (rank >= 2, read as the second input): use precision=fp16 or int8 for it")
    method, block = settings.get("calibration_method", "awq_lite"), int(settings.get("block_size", 128))
    if method != "rtn_dq" and not batches:
        raise OptbuildError(f"int4 method {method} needs calibration data: set calibration.dataset, or use "
                            "target.tensorrt.int4_method=rtn_dq")
    transposed = untransposed(model)
    with tempfile.TemporaryDirectory(prefix="optbuild-modelopt-") as scratch:
        work = Path(scratch, "model.onnx")  # modelopt writes intermediates next to its input: give it a copy
        onnx.save(model, str(work))
        _run_modelopt(str(work), target, batches, method, block)
    quantized = onnx.load(target)
    weights = int4_weights(quantized)
    if not weights:
        raise OptbuildError("precision int4: NVIDIA's quantizer left every MatMul/Gemm weight in float: use "
                            "precision=fp16 or int8 for this model")
    return {
        "quantizer": f"nvidia-modelopt {metadata.version('nvidia-modelopt')} (modelopt.onnx.quantization.quantize)",
        "format": "weight-only blocked DQ", "mode": "int4", "activations": "float (not quantized)",
        "weights": f"int4 symmetric, one scale per {block} weights along the reduction axis",
        "calibration_method": method, "block_size": block,
        "calibration_runtime": "onnxruntime CPUExecutionProvider" if method != "rtn_dq" else None,
        "calibration_samples": int(sum(len(next(iter(b.values()))) for b in batches)) if method != "rtn_dq" else 0,
        "int4_weights": len(weights), "gemm_weights": len(quantizable_weights(model)),
        "gemm_transb_rewritten": transposed,
        "bytes_before": Path(source).stat().st_size, "bytes": Path(target).stat().st_size,
    }


def _run_modelopt(work: str, target: str, batches: list[dict[str, np.ndarray]], method: str, block: int) -> None:
    try:
        import modelopt.onnx.quantization as moq
        from modelopt.onnx.quantization import extensions  # noqa: F401 - INT4 packing: fails here without cppimport
    except ImportError as err:
        raise OptbuildError(f"NVIDIA's quantizer cannot quantize to INT4 here ({first_line(err)}): run `make setup`, "
                            "which installs nvidia-modelopt with cppimport, Mako and pybind11 (see the Makefile)") from err
    logging.getLogger("modelopt.onnx").addFilter(NoGpuProbe())
    data, shapes = calibration_arrays(batches) if batches else (None, None)
    try:
        moq.quantize(onnx_path=work, quantize_mode="int4", calibration_method=method, calibration_data=data,
                     calibration_shapes=shapes, calibration_eps=["cpu"], block_size=block, output_path=target,
                     log_level="ERROR")
    except Exception as err:  # noqa: BLE001 - any failure inside the quantizer is one line
        raise OptbuildError(f"NVIDIA's quantizer (modelopt, int4) failed: {type(err).__name__}: {first_line(err)}") from err
    if not Path(target).is_file():
        raise OptbuildError("NVIDIA's quantizer (modelopt) wrote no model: see the run's log")
