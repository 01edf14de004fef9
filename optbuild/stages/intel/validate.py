"""Stage `validate` (intel): the artifact against the FP32 ONNX Runtime reference."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from optbuild.data import DatasetRequest, batches, load_labeled
from optbuild.passes.onnx_io import cpu_session
from optbuild.serving.contract import describe, normalize, pixel_inputs, to_pixels
from optbuild.serving.openvino import OpenVINOModel
from optbuild.stages.intel.runtime import read_runtime
from optbuild.stages.metrics import paired_outputs, validation_metrics


def validate(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """The artifact, compiled as its runtime.json says and fed what a client sends (with
    embedded preprocessing: each decoded image through optbuild.load's image path, or for
    arrays and synthetic data their 8-bit pixels), against FP32 ONNX Runtime fed the recipe's
    preprocessing of the same images: agreement and errors per output, and top-1/top-5 when the
    set has labels."""
    contract = params["client"]
    artifact = OpenVINOModel(inputs["model.xml"], read_runtime(inputs["runtime.json"]), contract)
    request = replace(DatasetRequest.from_data(params["dataset"]), decoded=_takes_one_image(artifact))
    data = load_labeled(request)
    reference = cpu_session(inputs["reference.onnx"])
    names = [o.name for o in reference.get_outputs()]
    if data.decoded is not None:  # image data: each image as decoded, through optbuild.load's path
        ref_out, art_out = _decoded_images(data.samples, data.decoded, reference, artifact)
        fed = [f"{describe(spec)}: {len(data.decoded)} decoded images through optbuild.load's image path"
               for spec in contract]
    else:
        ref_out, art_out = paired_outputs(to_pixels(data.samples, contract), request.batch,
                                          lambda x: reference.run(None, normalize(x, contract)),
                                          lambda x: list(artifact(x).values()))
        fed = [describe(spec) for spec in contract]
    metrics = validation_metrics(ref_out, art_out, names, data.labels, params.get("metrics", ()))
    return {"files": [], "data": {"validation": {**metrics, "device": artifact.device,
                                                 "properties": artifact.properties, "fed": fed}}}


def _takes_one_image(artifact: OpenVINOModel) -> bool:
    """The artifact takes pixels of one image input, at a batch of one."""
    specs = pixel_inputs(artifact.contract)
    if len(specs) != 1 or len(artifact.contract) != 1:
        return False
    batch = artifact.compiled.inputs[0].get_partial_shape()[0]
    return batch.is_dynamic or batch.get_length() == 1


def _decoded_images(samples: dict[str, np.ndarray], decoded: list[np.ndarray], reference: Any,
                    artifact: OpenVINOModel) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The reference on the recipe's preprocessing of each image, the artifact on the image."""
    ref = [[np.asarray(o, np.float32) for o in reference.run(None, x)] for x in batches(samples, 1)]
    art = [[np.asarray(o, np.float32) for o in artifact.image(image).values()] for image in decoded]
    return [np.concatenate(outs) for outs in zip(*ref)], [np.concatenate(outs) for outs in zip(*art)]
