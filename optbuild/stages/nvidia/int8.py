"""INT8 and FP8 for TensorRT: NVIDIA TensorRT Model Optimizer's ONNX post-training quantization.

`modelopt.onnx.quantization.quantize` places Q/DQ the way TensorRT's explicit-quantization guide
asks: on the inputs of quantizable ops only (never on the output of a weighted op that feeds a
residual Add, so TensorRT fuses Conv+Add), signed symmetric INT8 with per-tensor activation and
per-output-channel weight scales, biases in float. Calibration runs here, on ONNX Runtime's CPU
provider, over the recipe's seeded calibration set. Ops left unquantized run in
`high_precision` (fp16 by default, as NVIDIA's tools do; the recipe's
`half_keep_float32_ops` stay float32). FP8 (`settings["mode"] == "fp8"`) is the same with E4M3
Q/DQ, which ONNX Runtime's CPU provider runs, so the CPU proxy checks it too.

Transformers (`quantize.model_type: transformer`) get MatMul-only quantization after a
SmoothQuant pass (smooth.py), alpha 0.9 unless the recipe sets `quantize.smooth_quant_alpha`.

modelopt is installed without its dependencies (its `[onnx]` extra pins onnx and
onnxruntime-gpu versions this project does not use): see the Makefile.
"""

from __future__ import annotations

import logging
import re
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from optbuild.errors import OptbuildError, first_line
from optbuild.stages.nvidia import smooth

FORMATS = {  # what the manifest says each mode's Q/DQ hold
    "int8": {"activations": "int8 symmetric per-tensor", "weights": "int8 symmetric per-channel"},
    "fp8": {"activations": "fp8 e4m3 per-tensor", "weights": "fp8 e4m3 per-channel"},
}
TRANSFORMER_OPS = ["MatMul"]  # what a transformer quantizes: its GEMMs, not its residual Adds
TRANSFORMER_ALPHA = 0.9  # measured on all-MiniLM-L6-v2: 0.9 keeps retrieval agreement >= 0.85, 0.7 does not


def float_nodes(model: Any, keep: list[str]) -> list[str]:
    """Node names left without Q/DQ, from target.tensorrt.int8_keep_float: `first_conv`,
    `depthwise_conv`, or node names."""
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    names = {n.name for n in model.graph.node}
    chosen: list[str] = []
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


def named(model: Any) -> Any:
    """Every node with a name: exclusion lists and reports refer to nodes by name."""
    for index, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{index}"
    return model


def calibration_arrays(batches: list[dict[str, np.ndarray]]) -> tuple[dict[str, np.ndarray], str]:
    """modelopt's calibration data (every batch stacked, per input) and the shape of one step."""
    names = list(batches[0])
    stacked = {name: np.concatenate([batch[name] for batch in batches]) for name in names}
    shapes = ",".join(f"{name}:{'x'.join(str(d) for d in batches[0][name].shape)}" for name in names)
    return stacked, shapes


def quantize(source: str, target: str, batches: list[dict[str, np.ndarray]], keep_float: list[str],
             settings: dict[str, Any]) -> dict[str, Any]:
    """Quantize the ONNX file `source` into `target`. `settings`: mode (int8, the default, or
    fp8), calibration_method (max or entropy), high_precision (fp16, bf16 or fp32),
    keep_float32_ops, model_type, smooth_quant_alpha."""
    import onnx

    model = named(onnx.load(source))
    excluded = float_nodes(model, keep_float)
    transformer = settings.get("model_type") == "transformer"
    alpha = settings.get("smooth_quant_alpha")
    alpha = TRANSFORMER_ALPHA if alpha is None and transformer else alpha
    smoothing = None
    if alpha is not None and alpha >= 0:
        model, smoothing = smooth.smooth(model, batches, float(alpha))
    data, shapes = calibration_arrays(batches)
    with tempfile.TemporaryDirectory(prefix="optbuild-modelopt-") as scratch:
        # modelopt rewrites its input file and writes intermediates next to it: give it a copy.
        work = Path(scratch, "model.onnx")
        onnx.save(model, str(work))
        _run_modelopt(str(work), target, data, shapes, excluded, settings, TRANSFORMER_OPS if transformer else None)
    layers = quantized_layers(onnx.load(target))
    mode = settings.get("mode", "int8")
    if not layers:
        kept = f"; target.tensorrt.int8_keep_float kept {len(excluded)} more" if excluded else ""
        raise OptbuildError(f"precision {mode}: NVIDIA's quantizer found no layer TensorRT would run faster in "
                            f"{mode.upper()} (it "
                            "leaves GEMMs with K or N under 16, GEMVs and convolutions under 16 channels in float"
                            f"{kept}): use precision=fp16 for this model")
    high = settings.get("high_precision", "fp16")
    return {
        "quantizer": f"nvidia-modelopt {metadata.version('nvidia-modelopt')} (modelopt.onnx.quantization.quantize)",
        "format": "QDQ", "mode": mode, **FORMATS[mode],
        "calibration_method": settings.get("calibration_method", "max"),
        "calibration_runtime": "onnxruntime CPUExecutionProvider",
        "calibration_samples": int(sum(len(next(iter(b.values()))) for b in batches)),
        "quantized_op_types": TRANSFORMER_OPS if transformer else "modelopt's default",
        "high_precision": high,
        "kept_float32_op_types": list(settings.get("keep_float32_ops", ())) if high != "fp32" else [],
        "smooth_quant": smoothing,
        "kept_float": list(keep_float), "kept_float_nodes": excluded, "quantized_layers": len(layers),
        "bytes": Path(target).stat().st_size,
    }


class NoGpuProbe(logging.Filter):
    """Calibrating on the CPU is the plan here, not an error: drop modelopt's NVML complaint."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Failed to get GPU count" not in record.getMessage()


def _run_modelopt(work: str, target: str, data: dict[str, np.ndarray], shapes: str, excluded: list[str],
                  settings: dict[str, Any], op_types: list[str] | None) -> None:
    try:
        import modelopt.onnx.quantization as moq
    except ImportError as err:
        raise OptbuildError(f"NVIDIA's quantizer is not installed ({first_line(err)}): run `make setup`, which "
                            "installs nvidia-modelopt without its dependencies (see the README)") from err
    logging.getLogger("modelopt.onnx").addFilter(NoGpuProbe())
    try:
        moq.quantize(onnx_path=work, quantize_mode=settings.get("mode", "int8"), calibration_data=data, calibration_shapes=shapes,
                     calibration_method=settings.get("calibration_method", "max"), calibration_eps=["cpu"],
                     nodes_to_exclude=[f"^{re.escape(name)}$" for name in excluded] or None,
                     op_types_to_quantize=op_types, high_precision_dtype=settings.get("high_precision", "fp16"),
                     op_types_to_exclude_fp16=list(settings.get("keep_float32_ops", ())) or None,
                     output_path=target, log_level="ERROR")
    except Exception as err:  # noqa: BLE001 - any failure inside the quantizer is one line
        raise OptbuildError(f"NVIDIA's quantizer (modelopt) failed: {type(err).__name__}: {first_line(err)}") from err
    if not Path(target).is_file():
        raise OptbuildError("NVIDIA's quantizer (modelopt) wrote no model: see the run's log")


# Ops that only move or select values: quantizing their input or their output is the same rounding,
# so a layer reads float only if the Q/DQ before them goes too (MaxPool -> Flatten -> Gemm).
PASS_THROUGH_OPS = ("MaxPool", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Slice",
                    "Concat", "Split", "Pad", "SpaceToDepth", "DepthToSpace")
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


class _FloatPaths:
    """Float versions of a Q/DQ graph's tensors: through each Q/DQ pair back to the float tensor
    it quantized (a quantized weight becomes a float initializer), through pass-through ops by a
    private copy of the op, so the layer's other readers keep their quantized inputs."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.producers = {out: node for node in model.graph.node for out in node.output}
        self.constants = {t.name: t for t in model.graph.initializer}
        self.memo: dict[str, str] = {}

    def reads_quantized(self, node: Any) -> bool:
        return any(self.of(name) != name for name in node.input if name)

    def of(self, tensor: str) -> str:
        if tensor not in self.memo:
            self.memo[tensor] = self._float(tensor)
        return self.memo[tensor]

    def _float(self, tensor: str) -> str:
        node = self.producers.get(tensor)
        if node is None:
            return tensor
        if node.op_type == "DequantizeLinear":
            quantize = self.producers.get(node.input[0])
            if quantize is not None and quantize.op_type == "QuantizeLinear":
                return self.of(quantize.input[0])  # the float tensor before Q (activation or weight)
            if node.input[0] in self.constants:
                return self._float_weight(node)
            return tensor
        if node.op_type not in PASS_THROUGH_OPS:
            return tensor
        inputs = [self.of(name) if name else name for name in node.input]
        if inputs == list(node.input):
            return tensor
        copy = _node_copy(node, inputs, suffix="_float")
        self.model.graph.node.append(copy)
        return copy.output[list(node.output).index(tensor)]

    def _float_weight(self, dq: Any) -> str:
        from onnx import numpy_helper

        scale = numpy_helper.to_array(self.constants[dq.input[1]])
        values = numpy_helper.to_array(self.constants[dq.input[0]]).astype(np.float32)
        axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
        shape = [1] * values.ndim
        if scale.size > 1:
            shape[axis] = scale.size
        floats = numpy_helper.from_array((values * scale.reshape(shape)).astype(scale.dtype), f"{dq.input[0]}_float")
        self.model.graph.initializer.append(floats)
        return floats.name


def _node_copy(node: Any, inputs: list[str], suffix: str) -> Any:
    from onnx import helper

    copy = helper.make_node(node.op_type, inputs, [f"{out}{suffix}" for out in node.output], f"{node.name}{suffix}",
                            domain=node.domain or None)
    copy.attribute.extend(node.attribute)
    return copy


def quantized_layers(model: Any) -> list[str]:
    """Nodes that read a quantized tensor, directly or through pass-through ops: the layers that
    run in INT8 and could be kept in float."""
    paths = _FloatPaths(_copy(model))
    return [n.name for n in model.graph.node
            if n.name and n.op_type not in QDQ_OPS + PASS_THROUGH_OPS and paths.reads_quantized(n)]


def dequantized(model: Any, layers: list[str]) -> Any:
    """The Q/DQ graph with the named layers reading float inputs, activations and weights (a copy;
    Q/DQ pairs and pass-through ops shared with other readers stay quantized for those)."""
    import onnx_graphsurgeon as gs

    copy = _copy(model)
    paths = _FloatPaths(copy)
    wanted = set(layers)
    for node in list(copy.graph.node):
        if node.name in wanted:
            for slot, name in enumerate(node.input):
                if name:
                    node.input[slot] = paths.of(name)
    graph = gs.import_onnx(copy)
    graph.cleanup().toposort()
    return gs.export_onnx(graph)


def _copy(model: Any) -> Any:
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy
