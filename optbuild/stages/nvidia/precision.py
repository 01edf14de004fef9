"""Stage `precision` (nvidia): the strongly typed ONNX that TensorRT builds from.

int8 / fp8: signed symmetric Q/DQ (INT8, or FP8 E4M3 for Hopper/Ada/Blackwell) calibrated on the
recipe's data by NVIDIA's quantizer (int8.py), then the TensorRT explicit-quantization lint
(lint.py): a failed rule fails the build naming the nodes.
int4: INT4 weight-only MatMul/Gemm weights (blocked DQ) by the same quantizer (int4.py), then the
lint in its int4 mode.
fp16/bf16: converted types with float32 inputs/outputs (half.py). fp32: the graph as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optbuild.data import DatasetRequest, Feeds, batches, load, load_labeled
from optbuild.errors import OptbuildError
from optbuild.stages.model_inputs import check_inputs
from optbuild.stages.nvidia import client_input, half, int4, int8, lint
from optbuild.stages.nvidia.engine import EngineBuildError
from optbuild.stages.nvidia.engine import check_profiles as check_engine_profiles


def _calibration(params: dict[str, Any]) -> list[Feeds]:
    """The calibration batches (already in the seeded order); none without a calibration set."""
    if not params.get("calibration"):
        return []
    request = DatasetRequest.from_data(params["calibration"])
    return batches(load(request), request.batch)


def graph_inputs(model: Any) -> dict[str, list[int]]:
    """Non-initializer inputs with their dims (-1 where symbolic)."""
    initializers = {t.name for t in model.graph.initializer}
    return {
        t.name: [d.dim_value if d.HasField("dim_value") else -1 for d in t.type.tensor_type.shape.dim]
        for t in model.graph.input if t.name not in initializers
    }


def derived_profiles(dynamic: dict[str, list[int]], inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One optimization profile from the recipe's inputs, for the graph's dynamic inputs: a
    dimension the recipe leaves dynamic spans its min..max with opt; one it fixes is that size."""
    if not dynamic:
        return []
    specs, shapes = {spec["name"]: spec for spec in inputs}, []
    for name, dims in dynamic.items():
        spec = specs.get(name)
        if spec is None:
            return []  # not the recipe's input: check_engine_profiles names it
        ranges: dict[str, list[int]] = {bound: [] for bound in ("min", "opt", "max")}
        for axis, dim in enumerate(spec["shape"]):
            key = dim if isinstance(dim, str) else str(axis)
            dynamic_dim = isinstance(dim, str) or dim == -1
            limits = spec.get("dims", {}).get(key) or {"min": 1, "opt": 1, "max": 1}
            for bound in ranges:
                ranges[bound].append(int(limits[bound]) if dynamic_dim else int(dim))
        shapes.append({"input": name, **ranges})
    return [{"shapes": shapes}]


def with_profiles(model: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """The build spec with the optimization profiles the graph needs: the recipe's own
    (target.tensorrt.profiles), else one derived from its inputs; checked against the graph."""
    dynamic = {name: dims for name, dims in graph_inputs(model).items() if any(d < 0 for d in dims)}
    settings = dict(spec["tensorrt"])
    settings["profiles"] = settings["profiles"] or derived_profiles(dynamic, spec["inputs"])
    try:
        check_engine_profiles(dynamic, settings["profiles"])
    except EngineBuildError as err:
        raise OptbuildError(str(err)) from err
    return {**spec, "tensorrt": settings}


def prepare(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    import onnx

    model = onnx.load(inputs["model.onnx"])
    check_inputs(model, params["inputs"])
    precision, target = params["precision"], Path(out_dir, "model.onnx")
    calibration = _calibration(params)
    settings = params.get("quantizer")  # int8, fp8 and int4: NVIDIA's quantizer in that mode
    if settings:
        control, validation = params.get("accuracy_control"), params.get("validation")
        if settings["mode"] == "int4":
            report = int4.quantize(inputs["model.onnx"], str(target), calibration, settings)
        elif control and validation:
            from optbuild.stages.nvidia.sensitivity import restore_accuracy

            request = DatasetRequest.from_data(validation)
            data = load_labeled(request)
            report = restore_accuracy(inputs["model.onnx"], str(target), calibration, params["keep_float"],
                                      settings, data.samples, data.labels, control, request.batch)
        else:
            report = int8.quantize(inputs["model.onnx"], str(target), calibration, params["keep_float"], settings)
        quantized = onnx.load(str(target))
        violations = lint.lint(quantized, precision)
        if violations:
            raise OptbuildError(f"TensorRT explicit-quantization lint failed on {len(violations)} node(s): "
                                f"{lint.grouped(violations)}; the quantized graph cannot build as "
                                f"{precision.upper()} in TensorRT")
        report["lint"] = lint.summary(quantized, precision)
    elif precision in ("fp16", "bf16"):
        convert = half.to_float16 if precision == "fp16" else half.to_bfloat16
        converted, report = convert(model, calibration, params.get("keep_float32_ops", ()))
        onnx.checker.check_model(converted)
        onnx.save(converted, str(target))
    else:
        onnx.save(model, str(target))
        report = {"conversion": "none: float32 graph"}
    contract = params.get("client") or []
    embeds = bool(client_input.pixel_inputs(contract))
    prepared = onnx.load(str(target), load_external_data=embeds)
    if embeds:  # after the precision tools: the pixels step stays float32
        prepared = client_input.embed(prepared, contract)
        onnx.save(prepared, str(target))
    return {"files": ["model.onnx"], "data": {"precision": precision, "quantized": bool(settings), **report,
                                              "interface": client_input.interface(prepared, contract)}}
