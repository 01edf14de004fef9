"""Passes that rewrite a graph's interface or ops: renames, subgraph extraction, op replacement,
Erf-GELU → tanh-GELU."""

from __future__ import annotations

import difflib
import math
from typing import Any

import numpy as np
from pydantic import Field

from optbuild.errors import OptbuildError
from optbuild.passes import EXACT, ROUNDING, PassParams, Tolerance, register
from optbuild.passes.check import Case, Graphs
from optbuild.passes.onnx_io import graph_inputs


class RenameParams(PassParams):
    inputs: dict[str, str] = Field(default_factory=dict, description="old input name -> new name")
    outputs: dict[str, str] = Field(default_factory=dict, description="old output name -> new name")


@register("rename_io", RenameParams, tolerance=EXACT, changes_inputs=True)
def rename_io(graph: Any, inputs: dict[str, str], outputs: dict[str, str]) -> Any:
    """Rename graph inputs and outputs (e.g. to what a serving config expects). Outputs are
    unchanged; inputs and outputs keep their order."""
    if not inputs and not outputs:
        raise OptbuildError("rename_io: give `inputs` and/or `outputs` as {old_name: new_name}")
    renames = []
    for kind, wanted, tensors in (("input", inputs, graph.inputs), ("output", outputs, graph.outputs)):
        by_name = {t.name: t for t in tensors}
        for old, new in wanted.items():
            if old not in by_name:
                raise OptbuildError(f"rename_io: the graph has no {kind} '{old}'; {kind}s: {', '.join(by_name)}")
            renames.append((by_name[old], new))
    renamed = {t.name for t, _ in renames}
    taken = set(graph.tensors()) - renamed
    for tensor, new in renames:
        if new in taken:
            raise OptbuildError(f"rename_io: the name '{new}' is already used by a tensor of the graph")
        taken.add(new)
    for tensor, new in renames:
        tensor.name = new
    return graph


class ExtractParams(PassParams):
    inputs: list[str] = Field(min_length=1, description="tensors that become the graph inputs")
    outputs: list[str] = Field(min_length=1, description="tensors that become the graph outputs")


def extract_probe(graphs: Graphs) -> list[Case]:
    """Run the old graph, keeping the tensors that became the new inputs and outputs; feed the
    kept inputs to the new graph and expect the kept outputs."""
    import onnx

    wanted = [t.name for t in graphs.after.graph.input] + [t.name for t in graphs.after.graph.output]
    tapped = onnx.ModelProto()
    tapped.CopyFrom(graphs.before)
    known = {v.name: v for v in list(tapped.graph.value_info) + list(tapped.graph.input) + list(tapped.graph.output)}
    present = {o.name for o in tapped.graph.output}
    for name in wanted:
        if name not in present:
            tapped.graph.output.append(known.get(name) or onnx.helper.make_empty_tensor_value_info(name))
    feeds = {}
    for spec in graph_inputs(graphs.before):
        feeds[spec.name] = graphs.array(spec, graphs.shape(spec))
    values = graphs.run(tapped, feeds)
    new_inputs = [t.name for t in graphs.after.graph.input]
    return [Case({n: values[n] for n in new_inputs},
                 {o.name: values[o.name] for o in graphs.after.graph.output})]


@register("extract_subgraph", ExtractParams, tolerance=EXACT, probe=extract_probe, changes_inputs=True)
def extract_subgraph(graph: Any, inputs: list[str], outputs: list[str]) -> Any:
    """Keep only the part of the graph between the named tensors: they become the graph's inputs
    and outputs (like `polygraphy surgeon extract`). Checked by feeding the new graph the values
    the old graph computes for those tensors."""
    import onnx_graphsurgeon as gs

    tensors = graph.tensors()
    for name in inputs + outputs:
        if name not in tensors:
            close = difflib.get_close_matches(name, list(tensors), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise OptbuildError(f"extract_subgraph: the graph has no tensor '{name}'{hint}")
        if tensors[name].dtype is None:
            raise OptbuildError(f"extract_subgraph: the type of tensor '{name}' is unknown (shape "
                                "inference could not tell it); choose a neighbouring tensor")
    for name in inputs:
        tensor = tensors[name]
        if isinstance(tensor, gs.Constant):
            raise OptbuildError(f"extract_subgraph: '{name}' is a constant, not an input candidate")
        # Cut the tensor from its producer; a placeholder keeps the producer's output arity.
        for producer in list(tensor.inputs):
            producer.outputs[producer.outputs.index(tensor)] = gs.Variable(f"{name}/cut")
    graph.inputs = [tensors[n] for n in inputs]
    graph.outputs = [tensors[n] for n in outputs]
    graph.cleanup(remove_unused_graph_inputs=False).toposort()
    own_inputs = {id(t) for t in graph.inputs}
    for node in graph.nodes:
        for tensor in node.inputs:
            if isinstance(tensor, gs.Variable) and not tensor.is_empty() and not tensor.inputs \
                    and id(tensor) not in own_inputs:
                raise OptbuildError(
                    f"extract_subgraph: the outputs also depend on tensor '{tensor.name}', which is "
                    "not among `inputs`: add it"
                )
    return graph


class ReplaceParams(PassParams):
    op: str = Field(description="op type to replace, e.g. Relu")
    by: str = Field(description="op type to put in its place")
    attrs: dict[str, Any] | None = Field(default=None, description="attributes of the new nodes "
                                         "(None keeps the old nodes' attributes)")
    domain: str = Field(default="", description="op domain of the new nodes")


@register("replace_op", ReplaceParams, tolerance=ROUNDING)
def replace_op(graph: Any, op: str, by: str, attrs: dict[str, Any] | None, domain: str) -> Any:
    """Replace every node of one op type by a node of another type with the same inputs and
    outputs (and the given attributes). Meant for equivalent ops: the check enforces that
    outputs stay equal up to float rounding. For Erf-GELU see gelu_tanh."""
    nodes = [n for n in graph.nodes if n.op == op]
    if not nodes:
        present = sorted({n.op for n in graph.nodes})
        raise OptbuildError(f"replace_op: the graph has no '{op}' nodes; its ops: {', '.join(present)}")
    for node in nodes:
        node.op, node.domain = by, domain
        if attrs is not None:
            node.attrs = dict(attrs)
    return graph


SQRT2 = math.sqrt(2.0)
GELU_TOLERANCE = Tolerance(rtol=1e-2, atol=5e-3)  # tanh-GELU is within ~5e-4 of erf-GELU per value


@register("gelu_tanh", tolerance=GELU_TOLERANCE)
def gelu_tanh(graph: Any) -> Any:
    """Replace exact GELU, 0.5·x·(1 + erf(x/√2)) — the Div/Erf/Add/Mul/Mul chain exporters emit,
    or an opset-20 Gelu node — by its tanh approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
    (for runtimes where Erf is slow or unsupported). Outputs move by the approximation error."""
    replaced = 0
    for node in list(graph.nodes):
        if node.op == "Gelu" and node.attrs.get("approximate", "none") == "none":
            node.attrs["approximate"] = "tanh"
            replaced += 1
        elif node.op == "Erf" and (match := _erf_gelu(node)) is not None:
            x, out, old_nodes = match
            for old in old_nodes:
                old.outputs.clear()
            _tanh_gelu(graph, x, out, f"{out.name}/gelu_tanh")
            replaced += 1
    if not replaced:
        raise OptbuildError("gelu_tanh: the graph has no Erf-based GELU (Div/Erf/Add/Mul chain or Gelu op)")
    return graph.cleanup().toposort()


def _constant_values(tensor: Any) -> np.ndarray | None:
    """A tensor's value if it is a constant (an initializer or a Constant node's output)."""
    if hasattr(tensor, "values"):
        return np.asarray(tensor.values)
    if len(tensor.inputs) == 1 and tensor.inputs[0].op == "Constant":
        value = tensor.inputs[0].attrs.get("value")
        return np.asarray(value.values) if hasattr(value, "values") else None
    return None


def _const(tensor: Any, value: float) -> bool:
    values = _constant_values(tensor) if tensor is not None else None
    return values is not None and values.size == 1 and bool(np.allclose(values, value, rtol=1e-3))


def _other(node: Any, tensor: Any) -> Any | None:
    """The other input of a two-input node, given one of them."""
    if len(node.inputs) != 2:
        return None
    a, b = node.inputs
    return b if a is tensor else a if b is tensor else None


def _only_consumer(tensor: Any, op: str) -> Any | None:
    consumers = list(tensor.outputs)
    return consumers[0] if len(consumers) == 1 and consumers[0].op == op else None


def _erf_gelu(erf: Any) -> tuple[Any, Any, list[Any]] | None:
    """(x, output tensor, nodes to drop) if `erf` sits in an exact-GELU chain."""
    scaled = erf.inputs[0]
    if len(scaled.inputs) != 1 or len(scaled.outputs) != 1:
        return None
    pre = scaled.inputs[0]
    x = next((t for t in pre.inputs if _constant_values(t) is None), None)
    if x is None or not ((pre.op == "Div" and _const(_other(pre, x), SQRT2))
                         or (pre.op == "Mul" and _const(_other(pre, x), 1 / SQRT2))):
        return None
    add = _only_consumer(erf.outputs[0], "Add")
    if add is None or not _const(_other(add, erf.outputs[0]), 1.0):
        return None
    mul = _only_consumer(add.outputs[0], "Mul")
    other = _other(mul, add.outputs[0]) if mul is not None else None
    if mul is None or other is None:
        return None
    if other is x:  # (x · (1 + erf)) · 0.5
        half = _only_consumer(mul.outputs[0], "Mul")
        if half is None or not _const(_other(half, mul.outputs[0]), 0.5):
            return None
        return x, half.outputs[0], [pre, erf, add, mul, half]
    producer = other.inputs[0] if len(other.inputs) == 1 else None  # (0.5 · x) · (1 + erf)
    if producer is not None and producer.op == "Mul" and _other(producer, x) is not None \
            and _const(_other(producer, x), 0.5):
        return x, mul.outputs[0], [pre, erf, add, mul]
    return None


def _tanh_gelu(graph: Any, x: Any, out: Any, prefix: str) -> None:
    import onnx_graphsurgeon as gs

    dtype = x.dtype if x.dtype is not None else np.float32

    def const(name: str, value: float) -> Any:
        return gs.Constant(f"{prefix}/{name}", np.array(value, dtype=dtype))

    cube = graph.layer(op="Mul", inputs=[x, x], outputs=[f"{prefix}/x2"])[0]
    cube = graph.layer(op="Mul", inputs=[cube, x], outputs=[f"{prefix}/x3"])[0]
    inner = graph.layer(op="Mul", inputs=[cube, const("k", 0.044715)], outputs=[f"{prefix}/kx3"])[0]
    inner = graph.layer(op="Add", inputs=[x, inner], outputs=[f"{prefix}/sum"])[0]
    inner = graph.layer(op="Mul", inputs=[inner, const("c", math.sqrt(2 / math.pi))], outputs=[f"{prefix}/arg"])[0]
    tanh = graph.layer(op="Tanh", inputs=[inner], outputs=[f"{prefix}/tanh"])[0]
    one_plus = graph.layer(op="Add", inputs=[tanh, const("one", 1.0)], outputs=[f"{prefix}/1p"])[0]
    half_x = graph.layer(op="Mul", inputs=[x, const("half", 0.5)], outputs=[f"{prefix}/halfx"])[0]
    graph.layer(op="Mul", inputs=[half_x, one_plus], outputs=[out])
