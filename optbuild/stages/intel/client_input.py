"""The client's pixels into the IR: OpenVINO's PrePostProcessor on the image input.

The IR then takes 8-bit pixels (NHWC or NCHW, RGB or BGR, optionally any H×W) and converts,
resizes and normalises them itself; the CPU plugin fuses the mean/scale into the first layers,
and the client skips the numpy pass over every pixel (docs/serving.md has the measured gain).
"""

from __future__ import annotations

from typing import Any

from optbuild.config.model import MAX_DIM
from optbuild.serving.contract import PIXEL_SCALE, pixel_inputs


def embed(model: Any, contract: list[dict[str, Any]]) -> Any:
    """The model with each pixel input's preprocessing built in; other inputs as they were."""
    import openvino as ov
    from openvino.preprocess import ColorFormat, PrePostProcessor, ResizeAlgorithm

    specs = pixel_inputs(contract)
    if not specs:
        return model
    ppp = PrePostProcessor(model)
    for spec in specs:
        pre, port = spec["preprocess"], ppp.input(spec["name"])
        tensor = port.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout(spec["layout"]))
        if pre["resize_inside"]:
            tensor.set_spatial_dynamic_shape()
        port.model().set_layout(ov.Layout(pre["model_layout"]))
        steps = port.preprocess()
        if spec["color"] == "BGR":
            tensor.set_color_format(ColorFormat.BGR)
            steps.convert_color(ColorFormat.RGB)
        steps.convert_element_type(ov.Type.f32)
        if pre["resize_inside"]:
            steps.resize(ResizeAlgorithm.RESIZE_BILINEAR_PILLOW)  # antialiased, as PIL (the recipe)
        steps.mean([m * PIXEL_SCALE for m in pre["mean"]]).scale([s * PIXEL_SCALE for s in pre["std"]])
    return ppp.build()


def interface(model: Any, contract: list[dict[str, Any]]) -> dict[str, Any]:
    """The IR's inputs (the contract, with the shapes the IR really has) and outputs."""
    ports = {port.get_any_name(): port for port in model.inputs}
    inputs = []
    for spec in contract:  # the IR decides what may vary: the recipe's other dims were fixed at opt
        shape = ports[spec["name"]].get_partial_shape()
        dynamic = {str(axis): [max(1, dim.get_min_length()), dim.get_max_length() if dim.get_max_length() > 0 else MAX_DIM]
                   for axis, dim in enumerate(shape) if not dim.is_static}
        concrete = [dim.get_length() if dim.is_static else size for dim, size in zip(shape, spec["shape"])]
        inputs.append({**spec, "shape": concrete, "dynamic": dynamic, "ir_shape": shape.to_string()})
    outputs = [{"name": port.get_any_name(), "dtype": port.get_element_type().to_dtype().name,
                "shape": [d.get_length() if d.is_static else -1 for d in port.get_partial_shape()]}
               for port in model.outputs]
    return {"inputs": inputs, "outputs": outputs}
