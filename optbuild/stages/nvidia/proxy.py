"""Stage `cpu_proxy`: the prepared ONNX on ONNX Runtime (CPU) against the FP32 reference.

This is the CPU proxy for the engine's accuracy, not the engine: TensorRT picks its own kernels
and fusions. Q/DQ run as written (basic graph optimizations only), so INT8 is simulated exactly
as the graph specifies it; a BF16 graph runs through half.emulate_bfloat16.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from optbuild.data import DatasetRequest, load_labeled
from optbuild.passes.onnx_io import cpu_session
from optbuild.serving.contract import normalize, to_pixels
from optbuild.stages.metrics import paired_outputs, validation_metrics
from optbuild.stages.nvidia.half import emulate_bfloat16

# ONNX Runtime rewrites that change what a Q/DQ graph computes (onnxruntime 1.32): one folds a
# bias into INT32 through a float16 tensor, which overflows to inf when the graph's other ops are
# float16 (EfficientNet-Lite0: a depthwise Conv's output became inf); the other drops a Relu in
# front of a QuantizeLinear, which is only right for INT8 (wrong for FP8).
UNFAITHFUL_REWRITES = ("WeightBiasQuantization", "ReluQuantRewrite")


def qdq_session(model: Any) -> Any:
    """ONNX Runtime with basic optimizations only, and none of the rewrites that change the
    result, so Q/DQ nodes run as the graph writes them."""
    return cpu_session(model, optimization="basic", disabled=UNFAITHFUL_REWRITES)


def cpu_proxy(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    import onnx
    import onnxruntime as ort

    request = DatasetRequest.from_data(params["dataset"])
    data = load_labeled(request)
    reference = qdq_session(inputs["reference.onnx"])
    emulation = None
    candidate_model: Any = inputs["model.onnx"]
    if params["precision"] == "bf16":
        candidate_model = emulate_bfloat16(onnx.load(inputs["model.onnx"])).SerializeToString()
        emulation = "bfloat16 rounding of every bfloat16 tensor, float32 arithmetic"
    candidate = qdq_session(candidate_model)
    names = [o.name for o in reference.get_outputs()]
    contract = params.get("client") or []  # the graph takes what a client sends; the reference its own input
    reference_outputs, candidate_outputs = paired_outputs(
        to_pixels(data.samples, contract), request.batch, lambda x: reference.run(None, normalize(x, contract)),
        lambda x: candidate.run(None, x))
    metrics = validation_metrics(reference_outputs, candidate_outputs, names, data.labels, params.get("metrics", ()))
    return {"files": [], "data": {"cpu_proxy": {
        **metrics,
        "reference_max_abs": float(np.abs(reference_outputs[0]).max()),
        "runtime": f"onnxruntime {ort.__version__} CPUExecutionProvider",
        "emulation": emulation,
        "what": "the prepared ONNX on ONNX Runtime CPU vs the FP32 reference: a proxy for the "
                "engine's accuracy, not a measurement of the engine",
    }}}
