"""Embed image preprocessing in the graph: raw 8-bit pixels in, normalized float NCHW inside."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from optbuild.config.model import IMAGENET_MEAN, IMAGENET_STD
from optbuild.errors import OptbuildError
from optbuild.passes import ROUNDING, PassParams, register
from optbuild.passes.check import Case, Graphs, Unverifiable
from optbuild.passes.onnx_io import graph_inputs, graph_outputs, random_array


class PreprocessParams(PassParams):
    input: str | None = Field(default=None, description="the image input (default: the only input)")
    mean: list[float] = Field(default_factory=lambda: list(IMAGENET_MEAN), description="per channel, on 0..1 pixels")
    std: list[float] = Field(default_factory=lambda: list(IMAGENET_STD), description="per channel, on 0..1 pixels")
    layout: Literal["NHWC", "NCHW"] = Field(default="NHWC", description="layout of the raw pixels")
    bgr: bool = Field(default=False, description="raw pixels come in BGR order (OpenCV); the model wants RGB")


def _pixels_to_model(x: np.ndarray, params: dict[str, Any], dtype: str) -> np.ndarray:
    """The same preprocessing in numpy, for the check."""
    if params["layout"] == "NHWC":
        x = x.transpose(0, 3, 1, 2)
    if params["bgr"]:
        x = x[:, ::-1]
    shape = (1, -1, 1, 1)
    mean, std = np.reshape(params["mean"], shape), np.reshape(params["std"], shape)
    return ((x.astype(np.float64) / 255.0 - mean) / std).astype(dtype)


def preprocess_probe(graphs: Graphs) -> list[Case]:
    """Random 8-bit pixels into the new graph; the same pixels, preprocessed in numpy, into
    the old one."""
    old_in, new_in = graph_inputs(graphs.before), graph_inputs(graphs.after)
    if len(old_in) != len(new_in):
        raise Unverifiable("the pass changed the number of graph inputs")
    old_feeds, new_feeds = {}, {}
    for old, new in zip(old_in, new_in):
        if new.dtype == "uint8" and old.dtype != "uint8":
            nchw = graphs.shape(old)
            shape = [nchw[0], nchw[2], nchw[3], nchw[1]] if graphs.params["layout"] == "NHWC" else nchw
            pixels = random_array(graphs.rng, "uint8", shape)
            old_feeds[old.name], new_feeds[new.name] = _pixels_to_model(pixels, graphs.params, old.dtype), pixels
        else:
            value = graphs.array(old, graphs.shape(old, new))
            old_feeds[old.name], new_feeds[new.name] = value, value
    reference = graphs.run(graphs.before, old_feeds)
    names = zip(graph_outputs(graphs.before), graph_outputs(graphs.after))
    return [Case(new_feeds, {n.name: reference[o.name] for o, n in names})]


@register("embed_preprocess", PreprocessParams, tolerance=ROUNDING, probe=preprocess_probe, changes_inputs=True)
def embed_preprocess(graph: Any, input: str | None, mean: list[float], std: list[float],
                     layout: str, bgr: bool) -> Any:
    """Make the image input take raw uint8 pixels (NHWC by default, optionally BGR) and do the
    conversion inside the graph: transpose to NCHW, cast to float, (x/255 - mean)/std. The input
    keeps its name. Outputs equal the old graph's on the same pixels preprocessed outside, up
    to float rounding. Calibration and validation data must then be raw pixels too."""
    import onnx_graphsurgeon as gs

    candidates = [t for t in graph.inputs if input is None or t.name == input]
    if len(candidates) != 1:
        names = ", ".join(t.name for t in graph.inputs)
        what = f"no input '{input}'" if input else "more than one input: name one with `input`"
        raise OptbuildError(f"embed_preprocess: the graph has {what}; inputs: {names}")
    image = candidates[0]
    shape = image.shape or []
    if len(shape) != 4 or not isinstance(shape[1], int) or image.dtype is None \
            or not np.issubdtype(image.dtype, np.floating):
        raise OptbuildError(
            f"embed_preprocess: input '{image.name}' must be a float NCHW image with a static channel "
            f"count; it is {image.dtype} {shape}"
        )
    channels = shape[1]
    if len(mean) != channels or len(std) != channels or any(s == 0 for s in std):
        raise OptbuildError(
            f"embed_preprocess: give {channels} mean and {channels} non-zero std values (one per channel)"
        )
    if bgr and channels != 3:
        raise OptbuildError(f"embed_preprocess: bgr needs 3 channels; input '{image.name}' has {channels}")
    raw_shape = [shape[0], shape[2], shape[3], channels] if layout == "NHWC" else list(shape)
    pixels = gs.Variable(image.name, dtype=np.uint8, shape=raw_shape)
    name = image.name
    image.name = f"{name}/normalized"
    graph.inputs[graph.inputs.index(image)] = pixels

    x = pixels
    if layout == "NHWC":
        x = graph.layer(op="Transpose", inputs=[x], outputs=[f"{name}/nchw"], attrs={"perm": [0, 3, 1, 2]})[0]
    if bgr:
        order = gs.Constant(f"{name}/rgb_order", np.array([2, 1, 0], dtype=np.int64))
        x = graph.layer(op="Gather", inputs=[x, order], outputs=[f"{name}/rgb"], attrs={"axis": 1})[0]
    dtype = image.dtype
    x = graph.layer(op="Cast", inputs=[x], outputs=[f"{name}/float"],
                    attrs={"to": gs.exporters.onnx_exporter.dtype_to_onnx(dtype)})[0]
    column = (1, channels, 1, 1)
    offset = gs.Constant(f"{name}/mean_255", (np.array(mean) * 255.0).reshape(column).astype(dtype))
    factor = gs.Constant(f"{name}/inv_std_255", (1.0 / (np.array(std) * 255.0)).reshape(column).astype(dtype))
    x = graph.layer(op="Sub", inputs=[x, offset], outputs=[f"{name}/centered"])[0]
    graph.layer(op="Mul", inputs=[x, factor], outputs=[image])
    return graph.cleanup().toposort()
