"""INT8 for TensorRT: signed, symmetric Q/DQ from ONNX Runtime's static quantizer.

Why this quantizer: it emits what TensorRT's explicit quantization accepts directly, with no
rewrite afterwards: QuantFormat.QDQ with QInt8 activations and weights, symmetric (zero-point 0),
weights per output channel. NNCF's ONNX backend would emit UINT8 after ReLU, which TensorRT
rejects, and would need an unsigned→signed rewrite pass. Biases stay float (TensorRT has no
INT32 DequantizeLinear). Calibration is MinMax over the calibration set in its seeded order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from optbuild.errors import OptbuildError

# Q/DQ placement after NVIDIA's recommendations: inputs of weighted ops, residual adds, pooling.
QUANTIZED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "MaxPool", "AveragePool",
                 "GlobalAveragePool", "Concat")
EXTRA_OPTIONS = {
    "ActivationSymmetric": True,
    "WeightSymmetric": True,
    "QuantizeBias": False,
    "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1},
}  # not CalibMaxIntermediateOutputs: ORT 1.32 drops the ranges it collected when the limit is hit


def float_nodes(model: Any, keep: list[str]) -> list[str]:
    """Node names left without Q/DQ: the bias Adds (an Add of a constant: TensorRT quantizes
    only activations and weights, and a Q/DQ on a bias blocks its fusion into the MatMul), and
    those of target.tensorrt.int8_keep_float: `first_conv`, `depthwise_conv`, or names."""
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    names = {n.name for n in model.graph.node}
    constants = {t.name for t in model.graph.initializer} | {
        out for n in model.graph.node if n.op_type == "Constant" for out in n.output}
    chosen = [n.name for n in model.graph.node if n.op_type == "Add" and any(i in constants for i in n.input)]
    for entry in keep:
        if entry == "first_conv":
            chosen += [convs[0].name] if convs else []
        elif entry == "depthwise_conv":
            chosen += [n.name for n in convs if any(a.name == "group" and a.i > 1 for a in n.attribute)]
        elif entry in names:
            chosen.append(entry)
        else:
            raise OptbuildError(f"target.tensorrt.int8_keep_float names '{entry}', which is neither first_conv, "
                                "depthwise_conv nor a node of the model: fix the list")
    return sorted(set(chosen))


def quantize(source: str, target: str, batches: list[dict[str, np.ndarray]], keep_float: list[str],
             calibration_cache: str | None = None) -> dict[str, Any]:
    """`calibration_cache`: a file for ONNX Runtime's calibration ranges, written by the first
    call and read by later ones, so quantizing again with other layers excluded skips calibration."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    excluded = float_nodes(onnx.load(source, load_external_data=False), keep_float)
    quantize_static(source, target, Batches(), quant_format=QuantFormat.QDQ, op_types_to_quantize=list(QUANTIZED_OPS),
                    per_channel=True, nodes_to_exclude=excluded, reduce_range=False, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                    extra_options=dict(EXTRA_OPTIONS), calibration_cache_path=calibration_cache)
    return {
        "quantizer": "onnxruntime.quantization.quantize_static",
        "format": "QDQ", "activations": "int8 symmetric per-tensor", "weights": "int8 symmetric per-channel",
        "calibration_method": "MinMax", "quantized_op_types": list(QUANTIZED_OPS),
        "calibration_samples": int(sum(len(next(iter(b.values()))) for b in batches)),
        "kept_float": list(keep_float), "kept_float_nodes": excluded,
        "bytes": Path(target).stat().st_size,
    }
