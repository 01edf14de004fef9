"""Q/DQ rewrites: unsigned 8-bit activations to signed, as TensorRT requires.

TensorRT supports INT8 Q/DQ only as signed int8 with zero point 0 (symmetric). Quantizers such
as ONNX Runtime's and NNCF's ONNX backend emit uint8 activations with a zero point (e.g. 0 after
a ReLU, 128 for symmetric ranges), which TensorRT rejects or mis-handles.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from optbuild.errors import OptbuildError
from optbuild.passes import EXACT, PassParams, Tolerance, register

# Widening a scale (zero point 0 → symmetric) halves the resolution of those tensors: on
# EfficientNet-Lite0 the logits move by ~4% of their peak. A wrong rewrite moves them by >100%.
REQUANTIZED = Tolerance(rtol=0.1, atol=0.1)


class SignedParams(PassParams):
    symmetric: bool = Field(
        default=True,
        description="zero points become 0 (TensorRT); false keeps scales and shifts zero points by -128",
    )


def _tolerance(params: dict[str, Any]) -> Tolerance:
    return REQUANTIZED if params.get("symmetric", True) else EXACT


def signed(scale: np.ndarray, zero_point: np.ndarray, symmetric: bool) -> tuple[np.ndarray, np.ndarray]:
    """(scale, int8 zero point) covering the same real range as a uint8 (scale, zero point)."""
    z = zero_point.astype(np.int32)
    if not symmetric:
        return scale.copy(), np.asarray(z - 128, dtype=np.int8)  # q_s8 = q_u8 - 128: exact
    # Zero point 128 is symmetric already: same scale, exact. Others widen the scale so that
    # int8 [-127, 127] covers the old range [(0 - z)·s, (255 - z)·s].
    reach = np.maximum(z, 255 - z).astype(scale.dtype)
    new_scale = np.where(z == 128, scale, scale * reach / 127).astype(scale.dtype)
    return np.asarray(new_scale), np.zeros(z.shape, np.int8)


def _requantize(q: np.ndarray, scale: np.ndarray, z: np.ndarray, new_scale: np.ndarray,
                new_z: np.ndarray, axis: int) -> np.ndarray:
    """Constant uint8 data (weights) in the new int8 parameters."""
    shape = [1] * q.ndim
    if scale.size > 1:
        shape[axis] = -1
    real = (q.astype(np.float64) - z.reshape(shape)) * scale.reshape(shape)
    out = np.round(real / new_scale.reshape(shape)) + new_z.reshape(shape)
    return np.asarray(np.clip(out, -128, 127), dtype=np.int8)


def _keep_saturation(graph: Any, quantize: Any, scale: np.ndarray, z: np.ndarray) -> None:
    """A uint8 QuantizeLinear clamps to [(0 - z)·s, (255 - z)·s], and quantizers rely on that
    clamp (ONNX Runtime drops the ReLU/ReLU6 before a zero-point-0 quantizer). The wider
    symmetric range would lose it: clip to the old range first."""
    import onnx_graphsurgeon as gs

    if scale.size != 1:
        raise OptbuildError(
            f"qdq_to_signed: QuantizeLinear '{quantize.name}' quantizes per channel with zero points "
            "other than 128; use `symmetric: false` (exact) for this graph"
        )
    x = quantize.inputs[0]
    dtype = x.dtype if x.dtype is not None else np.float32
    low = gs.Constant(f"{quantize.name}/clip_min", np.array((0 - z.item()) * scale.item(), dtype=dtype))
    high = gs.Constant(f"{quantize.name}/clip_max", np.array((255 - z.item()) * scale.item(), dtype=dtype))
    clipped = graph.layer(op="Clip", inputs=[x, low, high], outputs=[f"{quantize.name}/clipped"])[0]
    clipped.dtype = dtype
    quantize.inputs[0] = clipped


@register("qdq_to_signed", SignedParams, tolerance=_tolerance)
def qdq_to_signed(graph: Any, symmetric: bool) -> Any:
    """Rewrite uint8 QuantizeLinear/DequantizeLinear pairs (and uint8 constant data) to int8.
    symmetric (default): zero point 0, as TensorRT requires; exact where the zero point was 128,
    otherwise the scale widens to keep the range and a Clip keeps the old saturation (outputs
    move by about one quantization step).
    symmetric: false keeps every scale and shifts zero points by -128: exact."""
    import onnx_graphsurgeon as gs

    qdq = [n for n in graph.nodes if n.op in ("QuantizeLinear", "DequantizeLinear")]
    if not qdq:
        raise OptbuildError("qdq_to_signed: the graph has no QuantizeLinear/DequantizeLinear nodes")
    for node in qdq:
        data, scale = node.inputs[0], node.inputs[1]
        zero = node.inputs[2] if len(node.inputs) > 2 and not node.inputs[2].is_empty() else None
        if node.op == "QuantizeLinear":
            unsigned = zero is None or zero.dtype == np.uint8  # no zero point means uint8 0
        else:
            unsigned = zero.dtype == np.uint8 if zero is not None else data.dtype == np.uint8
        if not unsigned:
            continue
        if not isinstance(scale, gs.Constant) or (zero is not None and not isinstance(zero, gs.Constant)):
            raise OptbuildError(
                f"qdq_to_signed: {node.op} '{node.name}' has a computed scale or zero point; run "
                "fold_constants before it"
            )
        s = np.asarray(scale.values)
        z = np.asarray(zero.values) if zero is not None else np.zeros(s.shape, np.uint8)
        new_s, new_z = signed(s, z, symmetric)
        new_zero = gs.Constant(f"{node.name}/zero_point_s8", new_z)
        node.inputs[1] = gs.Constant(f"{node.name}/scale_s8", new_s)
        if len(node.inputs) > 2:
            node.inputs[2] = new_zero
        else:
            node.inputs.append(new_zero)
        if node.op == "QuantizeLinear":
            node.outputs[0].dtype = np.int8
            if symmetric and np.any(z != 128):
                _keep_saturation(graph, node, s, z)
        elif isinstance(data, gs.Constant):
            axis = int(node.attrs.get("axis", 1)) % max(data.values.ndim, 1)
            node.inputs[0] = gs.Constant(f"{node.name}/data_s8",
                                         _requantize(data.values, s, z, new_s, new_z, axis))
    return graph.cleanup().toposort()
