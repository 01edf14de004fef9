"""Stage `validate` (intel): the artifact against the FP32 ONNX Runtime reference."""

from __future__ import annotations

from typing import Any

from optbuild.data import DatasetRequest, load_labeled
from optbuild.passes.onnx_io import cpu_session
from optbuild.serving.contract import describe, normalize, to_pixels
from optbuild.serving.openvino import OpenVINOModel
from optbuild.stages.intel.runtime import read_runtime
from optbuild.stages.metrics import paired_outputs, validation_metrics


def validate(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """The artifact, compiled as its runtime.json says and fed exactly what a client sends
    (8-bit pixels when it embeds preprocessing), against FP32 ONNX Runtime fed the same pixels
    through the recipe's preprocessing: agreement and errors per output, and top-1/top-5 when
    the set has labels."""
    request = DatasetRequest.from_data(params["dataset"])
    data = load_labeled(request)
    contract = params["client"]
    client = to_pixels(data.samples, contract)
    reference = cpu_session(inputs["reference.onnx"])
    runtime = read_runtime(inputs["runtime.json"])
    artifact = OpenVINOModel(inputs["model.xml"], runtime, contract)
    names = [o.name for o in reference.get_outputs()]
    ref_out, art_out = paired_outputs(client, request.batch, lambda x: reference.run(None, normalize(x, contract)),
                                      lambda x: list(artifact(x).values()))
    metrics = validation_metrics(ref_out, art_out, names, data.labels, params.get("metrics", ()))
    return {"files": [], "data": {"validation": {**metrics, "device": artifact.device, "properties": artifact.properties,
                                                 "fed": [describe(spec) for spec in contract]}}}
