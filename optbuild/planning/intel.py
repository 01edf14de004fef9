"""The `intel` target: an OpenVINO IR.

    source (→ export) → surgery → quantize → build (→ tune) → validate → benchmark

The artifact is the build stage's model.xml/model.bin and the runtime.json it is compiled with
(the tuned one when tune.enabled).
"""

from __future__ import annotations

from typing import Any

from optbuild.config.choices import PrecisionName, TargetName
from optbuild.config.schema import Config, as_data
from optbuild.passes import parse_passes
from optbuild.pipeline.stage import Dependency, Output, StageSpec
from optbuild.planning.common import (
    ONNX_TOOLS,
    OV_TOOLS,
    TORCH_TOOLS,
    client_inputs,
    dataset,
    metric_specs,
    model_stages,
    quantization_inputs,
    torch_baseline,
)
from optbuild.planning.host import Host
from optbuild.planning.plan import Plan
from optbuild.stages.intel import benchmark, convert, save, tune, validate

IR = ("model.xml", "model.bin")


def plan(config: Config, host: Host) -> Plan:
    stages, model = model_stages(config)
    stages += [_quantize(config, model.graph), _build(config)]
    runtime = Output("build", "runtime.json")
    if config.tune.enabled:
        stages.append(StageSpec("tune", 2, tune.tune, "tuning runtime settings (hint × streams × batch × precision)",
                                inputs={**_ir("build"), "runtime.json": runtime}, params=tune_params(config),
                                tools=OV_TOOLS, platform=True, unstable=("runtime.json",),
                                reports={"tuning": "tuning", "runtime": "tuning.runtime"}))
        runtime = Output("tune", "runtime.json")
    # Validation and benchmark use the artifact as deployed: compiled with its runtime.json.
    deployed = {**_ir("build"), "runtime.json": runtime}
    manifest: dict[str, Any] = {"validation_dataset": None, **model.manifest()}
    if config.validate.enabled:
        data = dataset(config.validate, config)
        manifest["validation_dataset"] = data.fingerprint
        stages.append(StageSpec("validate", 7, validate.validate, "validating against the FP32 reference",
                                inputs={**deployed, "reference.onnx": model.reference}, deps={"dataset": data},
                                params={"metrics": metric_specs(config), "client": client_inputs(config)},
                                tools=OV_TOOLS + ONNX_TOOLS, platform=True, reports={"validation": "validation"}))
    if config.benchmark.enabled:
        stages.append(_benchmark(config, {**deployed, "reference.onnx": model.graph}))
    return Plan(TargetName.intel, stages, artifact={**_ir("build"), "runtime.json": runtime}, manifest=manifest)


def _quantize(config: Config, graph: Output) -> StageSpec:
    int8 = config.precision.name is PrecisionName.int8
    # Only int8 changes this stage's output: fp32/fp16/bf16 builds share one conversion.
    params: dict[str, Any] = {"int8": int8, "inputs": as_data(config.model.inputs), "shapes": ir_shapes(config)}
    deps: dict[str, Dependency] = {}
    if int8:
        control, deps = quantization_inputs(config)
        params.update(control, model_type=as_data(config.quantize.model_type),
                      smooth_quant_alpha=config.quantize.smooth_quant_alpha)
    return StageSpec("quantize", 5, convert.quantize, "converting / quantizing", inputs={"model.onnx": graph},
                     params=params, deps=deps, tools=OV_TOOLS, reports={"quantization": ""})


def ir_shapes(config: Config) -> dict[str, list[Any]]:
    """Each input's shape in the IR: opt sizes, or [min, max] bounds for the dynamic dimensions
    when target.dynamic_shapes. A batch the recipe's `dynamic_batch` pass made dynamic stays
    dynamic (-1): that pass is how a recipe asks for it."""
    batch_pass = any(spec.name == "dynamic_batch" for spec in parse_passes(config.passes))
    shapes = {}
    for spec in config.model.inputs:
        shape: list[Any] = spec.concrete("opt")
        if config.target.dynamic_shapes:
            for axis, _ in spec.dynamic():
                bounds = spec.range_of(axis)
                shape[axis] = [bounds.min, bounds.max]
        if batch_pass and not isinstance(shape[0], list):
            shape[0] = -1
        shapes[spec.name] = shape
    return shapes


def _build(config: Config) -> StageSpec:
    return StageSpec("build", 5, save.save_ir, "building the OpenVINO IR", inputs=_ir("quantize"),
                     params={**as_data(config.precision), "device": config.target.device,
                             "client": client_inputs(config)}, tools=OV_TOOLS,
                     platform=True, reports={"runtime": "runtime", "notes": "notes", "interface": "interface",
                                             "resolved_inference_precision": "resolved_inference_precision"})


def _ir(stage: str) -> dict[str, Output]:
    return {name: Output(stage, name) for name in IR}


def _benchmark(config: Config, deployed: dict[str, Output]) -> StageSpec:
    torch = torch_baseline(config)
    measured = dict(deployed)
    if torch and config.model.weights is not None:
        measured["weights.pt"] = Output("source", "weights.pt")
    if config.embeds_preprocess():  # the same network without the pixels step: the hand-written flow
        measured.update({"network.xml": Output("quantize", "model.xml"), "network.bin": Output("quantize", "model.bin")})
    bench = config.benchmark
    return StageSpec("benchmark", 6, benchmark.benchmark,
                     "benchmarking latency and throughput against ONNX Runtime FP32 (and torch)", inputs=measured,
                     params={"inputs": client_inputs(config), "iterations": bench.iterations,
                             "warmup": bench.warmup, "throughput_seconds": bench.throughput_seconds, "torch": torch,
                             "remeasure": bench.remeasure},
                     tools=OV_TOOLS + ONNX_TOOLS + (TORCH_TOOLS if torch else ()), platform=True,
                     reports={"benchmark": "benchmark"})


def tune_params(config: Config) -> dict[str, Any]:
    """The tune stage's search space (values were checked by the schema)."""
    tune_config = config.tune
    chosen = tune_config.inference_precisions
    throughput = tune_config.objective.value == "throughput"
    return {
        "objective": tune_config.objective.value,
        "hints": list(dict.fromkeys(as_data(tune_config.hints))),
        "streams": list(dict.fromkeys(tune_config.streams)),
        # Latency is a batch-1 number: batching can only add to it.
        "batches": sorted(set(tune_config.batches)) if throughput else [1],
        "inference_precisions": list(dict.fromkeys(as_data(chosen))) if chosen is not None else None,
        "precision": config.precision.name.value,
        "seconds": tune_config.seconds,
        "inputs": client_inputs(config),
    }
