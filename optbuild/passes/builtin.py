"""Built-in graph-surgery passes (onnx-graphsurgeon)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from optbuild.errors import OptbuildError
from optbuild.passes import PassParams, register


class FoldParams(PassParams):
    size_threshold_bytes: int | None = Field(
        default=None, description="leave constants larger than this unfolded"
    )


@register("fold_constants", FoldParams)
def fold_constants(graph: Any, size_threshold_bytes: int | None = None) -> Any:
    """Evaluate subgraphs whose inputs are all constants (ONNX Runtime) and replace them by
    their values, then drop what became unused. Outputs are unchanged up to float rounding."""
    graph.fold_constants(size_threshold=size_threshold_bytes)
    return graph.cleanup().toposort()


@register("cleanup")
def cleanup(graph: Any) -> Any:
    """Remove nodes and tensors that no output depends on, then sort nodes topologically."""
    return graph.cleanup().toposort()


class ShapeParams(PassParams):
    input: str
    shape: list[int | str]


@register("set_input_shape", ShapeParams)
def set_input_shape(graph: Any, input: str, shape: list[int | str]) -> Any:
    """Give one graph input a new static or symbolic shape (strings are symbolic dims)."""
    tensors = {t.name: t for t in graph.inputs}
    if input not in tensors:
        raise OptbuildError(
            f"set_input_shape: the graph has no input '{input}'; inputs: {', '.join(tensors)}"
        )
    tensors[input].shape = list(shape)
    return _clear_intermediate_shapes(graph)


@register("dynamic_batch")
def dynamic_batch(graph: Any) -> Any:
    """Make dimension 0 of every input and output the symbolic 'batch', and turn Reshape
    targets that hard-code the old batch size into -1 so the graph runs at any batch."""
    batch = {t.shape[0] for t in graph.inputs if t.shape and isinstance(t.shape[0], int)}
    for tensor in list(graph.inputs) + list(graph.outputs):
        if tensor.shape:
            tensor.shape = ["batch", *tensor.shape[1:]]
    for node in graph.nodes:
        if node.op != "Reshape" or not hasattr(node.inputs[1], "values"):
            continue
        target = np.array(node.inputs[1].values)
        if target.size and int(target[0]) in batch and -1 not in target.tolist():
            target[0] = -1
            node.inputs[1].values = target.astype(np.int64)
    return _clear_intermediate_shapes(graph)


def _clear_intermediate_shapes(graph: Any) -> Any:
    """Stale intermediate shapes would contradict the new ones; ONNX shape inference redoes them."""
    keep = {t.name for t in list(graph.inputs) + list(graph.outputs)}
    for name, tensor in graph.tensors().items():
        if name not in keep and not hasattr(tensor, "values"):
            tensor.shape = None
    for tensor in graph.outputs:
        if tensor.shape:
            tensor.shape = [tensor.shape[0], *([None] * (len(tensor.shape) - 1))]
    return graph.cleanup().toposort()
