"""Passes that change the shapes a graph takes: a new input shape, a dynamic batch."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from optbuild.errors import OptbuildError
from optbuild.passes import EXACT, ROUNDING, PassParams, register
from optbuild.passes.check import Case, Graphs, Unverifiable
from optbuild.passes.onnx_io import graph_inputs, graph_outputs


class ShapeParams(PassParams):
    input: str = Field(description="graph input name")
    shape: list[int | str] = Field(description="new shape; strings are symbolic dims")


@register("set_input_shape", ShapeParams, tolerance=EXACT, changes_inputs=True)
def set_input_shape(graph: Any, input: str, shape: list[int | str]) -> Any:
    """Give one graph input a new static or symbolic shape (strings are symbolic dims);
    intermediate shapes are inferred again. Checked against the old graph where both accept the
    same data (e.g. symbolic → static); a different static shape cannot be compared."""
    tensors = {t.name: t for t in graph.inputs}
    if input not in tensors:
        raise OptbuildError(
            f"set_input_shape: the graph has no input '{input}'; inputs: {', '.join(tensors)}"
        )
    tensors[input].shape = list(shape)
    return clear_intermediate_shapes(graph)


def batch_probe(graphs: Graphs) -> list[Case]:
    """The new graph on a batch of two old-sized batches vs the old graph on each of them."""
    old_in, new_in = graph_inputs(graphs.before), graph_inputs(graphs.after)
    old_out, new_out = graph_outputs(graphs.before), graph_outputs(graphs.after)
    if len(old_in) != len(new_in) or len(old_out) != len(new_out):
        raise Unverifiable("the pass changed the number of graph inputs or outputs")
    halves: list[dict[str, np.ndarray]] = [{}, {}]
    for old, new in zip(old_in, new_in):
        shape = graphs.shape(old)
        for half in halves:
            half[old.name] = graphs.array(old, shape)
    feeds = {new.name: np.concatenate([h[old.name] for h in halves]) for old, new in zip(old_in, new_in)}
    results = [graphs.run(graphs.before, half) for half in halves]
    expected = {new.name: np.concatenate([r[old.name] for r in results])
                for old, new in zip(old_out, new_out)}
    return [Case(feeds, expected)]


class BatchParams(PassParams):
    dim_name: str = Field(default="batch", description="name of the symbolic batch dimension")


@register("dynamic_batch", BatchParams, tolerance=ROUNDING, probe=batch_probe, changes_inputs=True)
def dynamic_batch(graph: Any, dim_name: str) -> Any:
    """Make dimension 0 of every input and output the symbolic batch, and patch Reshape shape
    constants that hard-code the old batch size on batch-carrying data (to -1, or to 0 = "copy
    from the input" when the target already has a -1). Checked by running a batch of two
    against two runs of the old graph."""
    batch = {t.shape[0] for t in graph.inputs if t.shape and isinstance(t.shape[0], int)}
    for tensor in list(graph.inputs) + list(graph.outputs):
        if tensor.shape:
            tensor.shape = [dim_name, *tensor.shape[1:]]
    carries_batch = _batch_carrying(graph)
    for node in graph.nodes:
        target = node.inputs[1] if node.op == "Reshape" and len(node.inputs) > 1 else None
        if target is None or not hasattr(target, "values") or id(node.inputs[0]) not in carries_batch:
            continue
        values = np.array(target.values, dtype=np.int64).reshape(-1)
        if not values.size or int(values[0]) not in batch:
            continue
        values[0] = 0 if -1 in values.tolist() else -1
        if values[0] == 0 and node.attrs.get("allowzero", 0):
            raise OptbuildError(
                f"dynamic_batch: Reshape '{node.name}' uses allowzero=1 and already has a -1 in its "
                "target shape, so its batch dimension cannot be made dynamic"
            )
        # A fresh constant: the old one may be shared with Reshapes that must keep it.
        node.inputs[1] = type(target)(f"{target.name}_dynamic_batch", values)
    return clear_intermediate_shapes(graph)


def _batch_carrying(graph: Any) -> set[int]:
    """Ids of tensors computed from graph inputs as data (not through Shape/Size, which turn
    data into shape arithmetic)."""
    carrying = {id(t) for t in graph.inputs}
    for node in graph.toposort().nodes:
        if node.op in ("Shape", "Size"):
            continue
        if any(id(t) in carrying for t in node.inputs):
            carrying.update(id(t) for t in node.outputs)
    return carrying


def clear_intermediate_shapes(graph: Any) -> Any:
    """Stale intermediate shapes would contradict the new ones; ONNX shape inference redoes them."""
    keep = {t.name for t in list(graph.inputs) + list(graph.outputs)}
    for name, tensor in graph.tensors().items():
        if name not in keep and not hasattr(tensor, "values"):
            tensor.shape = None
    for tensor in graph.outputs:
        if tensor.shape:
            tensor.shape = [tensor.shape[0], *([None] * (len(tensor.shape) - 1))]
    return graph.cleanup().toposort()
