"""The client's pixels into the TensorRT graph: the same steps as ONNX ops at the input.

Transpose (NHWC), Gather (BGR→RGB), Cast to float32, Sub mean·255, Mul 1/(std·255): added after
the precision tools ran, so the normalisation stays float32 whatever the network's precision
(TensorRT fuses the pointwise chain into one kernel in front of the first layer).
"""

from __future__ import annotations

from typing import Any

from optbuild.passes.onnx_io import io_summary
from optbuild.serving.contract import pixel_inputs

__all__ = ["embed", "interface", "pixel_inputs"]


def embed(model: Any, contract: list[dict[str, Any]]) -> Any:
    """The ONNX model with each pixel input taking 8-bit pixels; others as they were."""
    import onnx
    import onnx_graphsurgeon as gs

    from optbuild.passes.preprocess import embed_preprocess

    specs = pixel_inputs(contract)
    if not specs:
        return model
    graph = gs.import_onnx(model)
    for spec in specs:
        pre = spec["preprocess"]
        graph = embed_preprocess(graph, input=spec["name"], mean=pre["mean"], std=pre["std"],
                                 layout=spec["layout"], bgr=spec["color"] == "BGR")
    embedded = gs.export_onnx(graph)
    embedded.ir_version = model.ir_version  # the opsets and IR version the precision tools chose
    del embedded.opset_import[:]
    embedded.opset_import.extend(model.opset_import)
    onnx.checker.check_model(embedded)
    return embedded


def interface(model: Any, contract: list[dict[str, Any]]) -> dict[str, Any]:
    """The graph's inputs (the contract, with the graph's own shapes) and outputs."""
    summary = io_summary(model)
    shapes = {t["name"]: t["shape"] for t in summary["inputs"]}
    return {"inputs": [{**spec, "graph_shape": shapes.get(spec["name"])} for spec in contract],
            "outputs": [{**t, "shape": [d if isinstance(d, int) else -1 for d in (t["shape"] or [])]}
                        for t in summary["outputs"]]}
