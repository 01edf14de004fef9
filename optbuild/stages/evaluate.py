"""Stage `validate`: the artifact against the FP32 ONNX Runtime reference (benchmark: stages/benchmark.py)."""

from __future__ import annotations

from typing import Any

from optbuild.metrics import paired_outputs, validation_metrics
from optbuild.stages.intel import read_runtime


def _reference(path: str) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def _artifact(inputs: dict[str, str], device: str, properties: dict[str, str]) -> Any:
    import openvino as ov

    return ov.Core().compile_model(inputs["model.xml"], device, properties)


def runtime_settings(inputs: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """(device, compile properties) from the artifact's runtime.json: what a deployment uses."""
    runtime = read_runtime(inputs["runtime.json"])
    return runtime["device"], dict(runtime["properties"])


def validate(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """The artifact, compiled as its runtime.json says, against FP32 ONNX Runtime on the
    validation set: agreement and errors per output, and top-1/top-5 when the set has labels."""
    from optbuild.datasets import load_labeled

    shape = params["input_shape"]
    data = load_labeled(input_shape=shape, **params["dataset"])
    reference = _reference(inputs["reference.onnx"])
    device, properties = runtime_settings(inputs)
    compiled = _artifact(inputs, device, properties)
    name = reference.get_inputs()[0].name
    names = [o.name for o in reference.get_outputs()]
    ref_out, art_out = paired_outputs(data.samples, shape[0], lambda x: reference.run(None, {name: x}),
                                      lambda x: list(compiled(x).values()))
    metrics = validation_metrics(ref_out, art_out, names, data.labels)
    return {"files": [], "data": {"validation": {**metrics, "device": device, "properties": properties}}}

