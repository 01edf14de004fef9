"""Stage `validate` (intel): the artifact against the FP32 ONNX Runtime reference."""

from __future__ import annotations

from typing import Any

from optbuild.data import DatasetRequest, load_labeled
from optbuild.passes.onnx_io import cpu_session
from optbuild.stages.intel.runtime import settings
from optbuild.stages.metrics import paired_outputs, validation_metrics


def validate(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """The artifact, compiled as its runtime.json says, against FP32 ONNX Runtime on the
    validation set: agreement and errors per output, and top-1/top-5 when the set has labels."""
    import openvino as ov

    request = DatasetRequest.from_data(params["dataset"])
    data = load_labeled(request)
    reference = cpu_session(inputs["reference.onnx"])
    device, properties = settings(inputs["runtime.json"])
    compiled = ov.Core().compile_model(inputs["model.xml"], device, properties)
    names = [o.name for o in reference.get_outputs()]
    ref_out, art_out = paired_outputs(data.samples, request.batch, lambda x: reference.run(None, x),
                                      lambda x: list(compiled(x).values()))
    metrics = validation_metrics(ref_out, art_out, names, data.labels, params.get("metrics", ()))
    return {"files": [], "data": {"validation": {**metrics, "device": device, "properties": properties}}}
