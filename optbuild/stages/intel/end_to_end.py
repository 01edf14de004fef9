"""From a decoded image to the outputs: what a deployed image model costs a client.

Three flows take turns on the same decoded 8-bit photo-sized image, in one process:

    artifact          optbuild.load's path: the recipe's geometry on the client (or only a centre
                      cut when the artifact resizes inside), then the IR, which converts and
                      normalises the pixels itself
    hand_written      the same network without embedded preprocessing, fed by what a client
                      writes by hand: PIL resize + crop, numpy normalisation and HWC→CHW
    onnxruntime_fp32  the FP32 ONNX model in ONNX Runtime with the same hand-written preprocessing
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from optbuild.data.images import fit_to_input
from optbuild.serving.contract import describe, image_size, normalize, pixel_inputs
from optbuild.serving.openvino import OpenVINOModel
from optbuild.stages.intel.turns import interleaved

IMAGE_SIZE = (480, 640)  # H, W: a VGA camera frame, larger than any classifier's input


def photo(seed: int = 0) -> np.ndarray:
    """A seeded 8-bit RGB image with a photo's smooth structure (noise blurred by upsampling)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (IMAGE_SIZE[0] // 16, IMAGE_SIZE[1] // 16, 3), dtype=np.uint8))
    return np.asarray(small.resize(IMAGE_SIZE[::-1], Image.Resampling.BICUBIC))


def hand_written(spec: Mapping[str, Any]) -> Any:
    """The preprocessing a client writes without the artifact's help, for the model's own input."""
    from PIL import Image

    pre = spec["preprocess"]
    height, width, channels = image_size(spec)
    as_model = [{**spec, "layout": "NHWC", "color": "RGB" if channels == 3 else "GRAY"}]
    mode = "L" if channels == 1 else "RGB"

    def prepare(image: np.ndarray) -> dict[str, np.ndarray]:
        picture = fit_to_input(Image.fromarray(image).convert(mode), {**pre["geometry"], "mean": pre["mean"]},
                               width, height)
        pixels = np.asarray(picture).reshape(1, height, width, channels)
        return normalize({spec["name"]: pixels}, as_model)

    return prepare


def end_to_end(inputs: Mapping[str, str], runtime: Mapping[str, Any], properties: dict[str, str],
               contract: list[dict[str, Any]], reference: Any, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """Latency of each flow from the decoded image, interleaved (turns.py), and the
    ratios; None for an artifact that takes no pixels."""
    import openvino as ov

    specs, core = pixel_inputs(contract), ov.Core()
    if len(specs) != 1 or len(contract) != 1:
        return None
    batch = core.read_model(inputs["model.xml"]).inputs[0].get_partial_shape()[0]
    if batch.is_static and batch.get_length() != 1:  # one image is not a batch this IR takes
        return None
    image = photo()
    artifact = OpenVINOModel(inputs["model.xml"], {**runtime, "properties": properties}, contract, core)
    network = core.compile_model(inputs["network.xml"], runtime["device"], properties).create_infer_request()
    prepare = hand_written(specs[0])
    flows = {
        "artifact": lambda: artifact.image(image),
        "hand_written": lambda: network.infer(prepare(image)),
        "onnxruntime_fp32": lambda: reference.run(None, prepare(image)),
    }
    latency = interleaved(flows, params["iterations"], params["warmup"])
    artifact_ms = latency["artifact"]["median_ms"]
    return {
        "image": [*IMAGE_SIZE, 3],
        "artifact_takes": describe(specs[0]),
        **latency,
        "ratio_vs_hand_written": artifact_ms / latency["hand_written"]["median_ms"],
        "ratio_vs_onnxruntime_fp32": artifact_ms / latency["onnxruntime_fp32"]["median_ms"],
    }
