"""Stages of the `intel` target: OpenVINO conversion, NNCF INT8, and the saved IR."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from optbuild.errors import OptbuildError

RUNTIME_FILE = "runtime.json"


def quantize(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """ONNX → OpenVINO model; for int8, NNCF post-training quantization on the calibration set
    (already shuffled by its seed; NNCF takes the first `subset_size` items in order)."""
    import openvino as ov

    try:
        model = ov.convert_model(inputs["model.onnx"])
    except Exception as err:  # noqa: BLE001
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise OptbuildError(f"OpenVINO cannot convert the ONNX model: {first}") from err
    data: dict[str, Any] = {"quantized": False}
    calibration = params.get("calibration")
    if params["int8"]:
        data = _nncf_quantize_into(model, calibration, params["input_shape"], out_dir)
    else:
        ov.save_model(model, str(Path(out_dir, "model.xml")), compress_to_fp16=False)
    return {"files": ["model.xml", "model.bin"], "data": data}


def _nncf_quantize_into(model: Any, calibration: dict[str, Any], input_shape: list[int],
                        out_dir: str) -> dict[str, Any]:
    import nncf
    import openvino as ov

    from optbuild.datasets import load_dataset

    if len(model.inputs) != 1:
        raise OptbuildError("int8 calibration supports single-input models for now")
    samples = load_dataset(input_shape=input_shape, **calibration)
    batch = input_shape[0]
    items = [samples[i : i + batch] for i in range(0, len(samples) - batch + 1, batch)]
    quantized = nncf.quantize(model, nncf.Dataset(items), subset_size=len(items))
    ov.save_model(quantized, str(Path(out_dir, "model.xml")), compress_to_fp16=False)
    fq = sum(1 for op in quantized.get_ops() if op.get_type_name() == "FakeQuantize")
    return {"quantized": True, "calibration_samples": len(items) * batch, "fake_quantize_ops": fq}


def runtime_properties(precision: dict[str, Any]) -> dict[str, str]:
    """The compile-time properties the artifact needs to behave as built."""
    hint = precision.get("inference_precision")
    return {"INFERENCE_PRECISION_HINT": hint} if hint else {}


def save_ir(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """The artifact: the IR saved with an explicit weight compression choice, compiled once on
    the device to prove it loads, and its runtime properties written next to it."""
    import openvino as ov

    core = ov.Core()
    model = core.read_model(inputs["model.xml"])
    ov.save_model(model, str(Path(out_dir, "model.xml")), compress_to_fp16=params["compress_to_fp16"])
    properties = runtime_properties(params)
    compiled = core.compile_model(str(Path(out_dir, "model.xml")), params["device"], properties)
    resolved = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
    runtime = {"device": params["device"], "properties": properties}
    Path(out_dir, RUNTIME_FILE).write_text(json.dumps(runtime, indent=2, sort_keys=True) + "\n")
    return {
        "files": ["model.xml", "model.bin", RUNTIME_FILE],
        "data": {"runtime": runtime, "resolved_inference_precision": resolved,
                 "compress_to_fp16": params["compress_to_fp16"]},
    }
