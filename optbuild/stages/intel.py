"""Stages of the `intel` target: OpenVINO conversion, NNCF INT8, and the saved IR."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from optbuild.errors import OptbuildError

RUNTIME_FILE = "runtime.json"
_AUTO_NAME = re.compile(r"^(?P<type>[A-Za-z][A-Za-z0-9]*)_\d+$")


def canonical_names(model: Any) -> Any:
    """Renumber auto-generated node names (`<Type>_<global counter>`) in topological order.

    OpenVINO and NNCF name unnamed nodes from a process-wide counter whose value differs
    between runs, so the same graph would serialize to different XML. These names carry no
    meaning: inputs and outputs are addressed by tensor names, which are left untouched.
    """
    ops = model.get_ordered_ops()
    taken = {op.get_friendly_name() for op in ops}
    counts: Counter[str] = Counter()
    for op in ops:
        match = _AUTO_NAME.match(op.get_friendly_name())
        if not match or match["type"] != op.get_type_name():
            continue
        while (name := f"{match['type']}_{counts[match['type']]}") in taken:
            counts[match["type"]] += 1
        counts[match["type"]] += 1
        taken.add(name)
        op.set_friendly_name(name)
    return model


def _save(model: Any, out_dir: str, compress_to_fp16: bool) -> None:
    import openvino as ov

    ov.save_model(canonical_names(model), str(Path(out_dir, "model.xml")), compress_to_fp16=compress_to_fp16)


def quantize(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """ONNX → OpenVINO model; for int8, NNCF post-training quantization on the calibration set
    (already shuffled by its seed; NNCF takes the first `subset_size` items in order)."""
    import onnx
    import openvino as ov

    from optbuild.stages.interface import check_inputs

    check_inputs(onnx.load(inputs["model.onnx"], load_external_data=False), params["inputs"])
    try:
        model = ov.convert_model(inputs["model.onnx"])
    except Exception as err:  # noqa: BLE001
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise OptbuildError(f"OpenVINO cannot convert the ONNX model: {first}") from err
    data: dict[str, Any] = {"quantized": False}
    calibration = params.get("calibration")
    if params["int8"]:
        data = _nncf_quantize_into(model, calibration, params["input_shape"], out_dir,
                                   params.get("accuracy_control"), params.get("validation"), inputs["model.onnx"])
    else:
        _save(model, out_dir, compress_to_fp16=False)
    return {"files": ["model.xml", "model.bin"], "data": data}


def _nncf_quantize_into(model: Any, calibration: dict[str, Any], input_shape: list[int], out_dir: str,
                        control: dict[str, Any] | None, validation: dict[str, Any] | None,
                        onnx_path: str) -> dict[str, Any]:
    import nncf

    from optbuild.datasets import load_dataset
    from optbuild.stages.intel_accuracy import layers_in_float, quantize_with_control

    if len(model.inputs) != 1:
        raise OptbuildError("int8 calibration supports single-input models for now")
    samples = load_dataset(input_shape=input_shape, **calibration)
    batch = input_shape[0]
    items = [samples[i : i + batch] for i in range(0, len(samples) - batch + 1, batch)]
    record: dict[str, Any] = {}
    if control is not None and validation is not None:
        quantized, record = quantize_with_control(model, items, onnx_path, validation, control, input_shape)
    else:
        quantized = nncf.quantize(model, nncf.Dataset(items), subset_size=len(items))
    _save(quantized, out_dir, compress_to_fp16=False)
    fq = sum(1 for op in quantized.get_ops() if op.get_type_name() == "FakeQuantize")
    return {"quantized": True, "calibration_samples": len(items) * batch, "fake_quantize_ops": fq,
            "layers_in_float": layers_in_float(quantized), "accuracy_control": record or None}


def read_runtime(path: str) -> dict[str, Any]:
    """A runtime.json: {"device", "properties"} (+ "batch", "objective" when tuned)."""
    return json.loads(Path(path).read_text())


def write_runtime(out_dir: str, runtime: dict[str, Any]) -> None:
    Path(out_dir, RUNTIME_FILE).write_text(json.dumps(runtime, indent=2, sort_keys=True) + "\n")


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
    _save(model, out_dir, params["compress_to_fp16"])
    properties = runtime_properties(params)
    compiled = core.compile_model(str(Path(out_dir, "model.xml")), params["device"], properties)
    resolved = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
    runtime = {"device": params["device"], "properties": properties}
    write_runtime(out_dir, runtime)
    return {
        "files": ["model.xml", "model.bin", RUNTIME_FILE],
        "data": {"runtime": runtime, "resolved_inference_precision": resolved,
                 "compress_to_fp16": params["compress_to_fp16"]},
    }
