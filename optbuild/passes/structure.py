"""Passes that tidy a graph without changing what it computes: folding, cleanup, no-op removal,
onnxslim's simplifier, opset conversion."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from optbuild.errors import OptbuildError, first_line
from optbuild.passes import EXACT, ROUNDING, PassParams, register
from optbuild.passes.onnx_io import is_large, on_disk


class FoldParams(PassParams):
    size_threshold_bytes: int | None = Field(
        default=None, description="leave folded constants larger than this unfolded (None: no limit)"
    )


@register("fold_constants", FoldParams, tolerance=ROUNDING)
def fold_constants(graph: Any, size_threshold_bytes: int | None = None) -> Any:
    """Evaluate subgraphs whose inputs are all constants (with ONNX Runtime, via
    onnx-graphsurgeon; static shapes fold Shape ops too) and replace them by their values, then
    drop what became unused. Outputs are unchanged up to float rounding."""
    graph.fold_constants(size_threshold=size_threshold_bytes)
    return graph.cleanup().toposort()


@register("cleanup", tolerance=EXACT)
def cleanup(graph: Any) -> Any:
    """Remove nodes and tensors that no output depends on, then sort nodes topologically.
    Graph inputs are kept. Outputs are unchanged."""
    return graph.cleanup(remove_unused_graph_inputs=False).toposort()


REMOVABLE: tuple[Literal["Identity", "Dropout"], ...] = ("Identity", "Dropout")


class RemoveParams(PassParams):
    ops: list[Literal["Identity", "Dropout"]] = Field(
        default_factory=lambda: list(REMOVABLE), description="op types to remove"
    )


@register("remove_identity", RemoveParams, tolerance=EXACT)
def remove_identity(graph: Any, ops: list[str]) -> Any:
    """Remove Identity nodes and inference-mode Dropout nodes (whose output equals their input),
    wiring their consumers to their input. Graph output names are kept. Outputs are unchanged."""
    outputs = {id(t) for t in graph.outputs}
    for node in list(graph.nodes):
        if node.op not in ops or not _is_noop(node):
            continue
        source, result = node.inputs[0], node.outputs[0]
        if id(result) in outputs:
            # The output name must survive: let the producer of `source` write it directly.
            if not source.inputs or id(source) in outputs or source in graph.inputs:
                continue
            producer = source.inputs[0]
            for consumer in list(source.outputs):
                if consumer is not node:
                    consumer.inputs[consumer.inputs.index(source)] = result
            producer.outputs[producer.outputs.index(source)] = result
        else:
            for consumer in list(result.outputs):
                for i, tensor in enumerate(consumer.inputs):
                    if tensor is result:
                        consumer.inputs[i] = source
        node.inputs.clear()
        node.outputs.clear()
    return graph.cleanup().toposort()


def _is_noop(node: Any) -> bool:
    if node.op == "Identity":
        return True
    # Dropout is the identity in inference unless asked to train, or its mask is used.
    training = node.inputs[2] if len(node.inputs) > 2 else None
    trains = training is not None and (not hasattr(training, "values") or bool(training.values))
    mask_used = len(node.outputs) > 1 and bool(node.outputs[1].outputs)
    return not trains and not mask_used


class SimplifyParams(PassParams):
    skip_fusions: list[str] = Field(
        default_factory=list, description="onnxslim fusion patterns to skip, e.g. [FusionPadConv]"
    )
    skip_optimizations: list[Literal["constant_folding", "graph_fusion", "dead_node_elimination",
                                     "subexpression_elimination", "weight_tying"]] = Field(
        default_factory=list, description="onnxslim optimizations to skip"
    )
    size_threshold_bytes: int | None = Field(
        default=None, description="leave folded constants larger than this unfolded"
    )


@register("simplify", SimplifyParams, tolerance=ROUNDING, works_on="model")
def simplify(model: Any, skip_fusions: list[str], skip_optimizations: list[str],
             size_threshold_bytes: int | None) -> Any:
    """onnxslim's simplifier: constant folding, dead-node and common-subexpression elimination,
    fusions (Pad into Conv, Conv+BatchNorm, Conv+Add, MatMul+Add into Gemm, ...), shape
    inference. Outputs are unchanged up to float rounding."""
    import onnxslim

    result = onnxslim.slim(model, skip_fusion_patterns=skip_fusions or None,
                           skip_optimizations=skip_optimizations or None,
                           size_threshold=size_threshold_bytes)
    if result is None:
        raise OptbuildError("simplify: onnxslim returned no model; see the run's log")
    return result


class OpsetParams(PassParams):
    opset: int = Field(ge=7, description="target opset of the default ONNX domain")


@register("convert_opset", OpsetParams, tolerance=ROUNDING, works_on="model")
def convert_opset(model: Any, opset: int) -> Any:
    """Convert the graph to another opset of the default domain with ONNX's version converter
    (op by op adapters, up or down). Outputs are unchanged up to float rounding."""
    import onnx
    from onnx import version_converter

    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        raise OptbuildError(f"convert_opset: opset {opset} is newer than this onnx knows ({newest})")
    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if current == opset:
        return model
    try:
        if not is_large(model):
            return version_converter.convert_version(model, opset)
        # The converter serializes the model: give it the graph without the weights, then
        # read the weights back from the file they were written to.
        with on_disk(model) as path:
            light = onnx.load(path, load_external_data=False)
            converted = version_converter.convert_version(light, opset)
            onnx.external_data_helper.load_external_data_for_model(converted, str(Path(path).parent))
            return converted
    except Exception as err:  # noqa: BLE001 - the converter raises plain RuntimeErrors
        first = first_line(err)
        raise OptbuildError(
            f"convert_opset: ONNX's version converter cannot take this graph from opset {current} "
            f"to {opset}: {first}"
        ) from err
