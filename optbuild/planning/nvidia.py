"""The `nvidia` target: a TensorRT engine, or a kit to build one on a GPU machine.

    source (→ export) → surgery → precision → cpu_proxy → kit                          (engine=kit)
    source (→ export) → surgery → precision → cpu_proxy → engine → validate → benchmark (engine here)

`target.engine=auto` builds the engine when TensorRT and a GPU are here and otherwise fails
before anything runs, saying what is missing; `build` insists on it; `kit` stops before it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from optbuild.config.choices import Engine, PrecisionName, TargetName
from optbuild.config.schema import Config, as_data
from optbuild.core.digest import sha256_file
from optbuild.errors import OptbuildError
from optbuild.pipeline.stage import Dependency, Output, StageSpec
from optbuild.planning.common import (
    ONNX_TOOLS,
    client_inputs,
    dataset,
    metric_specs,
    model_stages,
    quantization_inputs,
)
from optbuild.planning.host import Host
from optbuild.planning.plan import GatedRecord, Plan
from optbuild.serving.contract import pixel_order
from optbuild.stages.nvidia import gpu, kit, precision, proxy
from optbuild.stages.nvidia.engine import SPEC_SCHEMA

TRT_TOOLS = ("tensorrt",)
KIT_STATEMENT = ("No TensorRT engine was built: this is a build kit (target.engine=kit). The accuracy numbers "
                 "are the CPU proxy (ONNX Runtime on the prepared ONNX), not the engine. Build model.plan on a GPU "
                 "machine with `python build_engine.py` or `bash trtexec.sh` (both write into the kit's build/ folder); "
                 "`python check_engine.py`, when the kit has it, then checks the engine against the FP32 model.")
ENGINE_FILES = ("model.plan", "model.onnx", "build_spec.json", "engine.json", "timing.cache")
# Not byte-reproducible: TensorRT times tactics on the GPU at build time.
ENGINE_UNSTABLE = ("model.plan", "engine.json", "timing.cache")
log = logging.getLogger("optbuild")


def builds_engine(config: Config, host: Host) -> bool:
    mode = config.target.engine
    if mode is Engine.kit:
        return False
    missing = host.missing_for_engine()
    if missing:
        asked = "target.engine=build" if mode is Engine.build else "target=nvidia"
        raise OptbuildError(f"{asked} cannot build the TensorRT engine here: {' and '.join(missing)}; run on a "
                            "machine with TensorRT and an NVIDIA GPU, or pass target.engine=kit to stop before "
                            "the engine and publish a build kit")
    return True


def build_spec(config: Config) -> dict[str, Any]:
    """The engine's build settings as data (no paths): build_spec.json and part of the key.
    Input shapes and profiles are the engine's own: in the client's layout when the graph
    takes pixels (serve.embed_preprocess)."""
    settings = as_data(config.target.tensorrt)
    settings.pop("timing_cache")  # a path: its content digest is keyed instead
    for graph_setting in ("int8_keep_float", "int8_calibration", "int8_high_precision", "int4_method",
                          "int4_block_size", "half_keep_float32_ops"):
        settings.pop(graph_setting)  # they shape the graph (precision stage), not the builder
    inputs = as_data(config.model.inputs)
    pixels = {spec["name"]: spec for spec in client_inputs(config) if spec["preprocess"]}
    for spec in inputs:
        if spec["name"] in pixels:
            spec.update(_client_layout(spec, pixels[spec["name"]]["layout"]))
    for profile in settings["profiles"]:
        for shape_range in profile["shapes"]:
            if shape_range["input"] in pixels:
                order = pixel_order(pixels[shape_range["input"]]["layout"])
                shape_range.update({bound: [shape_range[bound][i] for i in order] if len(shape_range[bound]) == 4
                                    else shape_range[bound] for bound in ("min", "opt", "max")})
    return {"schema": SPEC_SCHEMA, "precision": config.precision.name.value, "inputs": inputs, "tensorrt": settings}


def _client_layout(spec: dict[str, Any], layout: str) -> dict[str, Any]:
    """A model input's spec as 8-bit pixels in `layout`: its shape and the index keys of its
    dynamic dimensions' ranges follow the axes."""
    order = pixel_order(layout)
    axis_of = {old: new for new, old in enumerate(order)}
    dims = {str(axis_of[int(key)]) if str(key).isdigit() else key: value for key, value in spec["dims"].items()}
    return {"dtype": "uint8", "shape": [spec["shape"][i] for i in order], "dims": dims}


def timing_cache(config: Config) -> Dependency:
    path = config.target.tensorrt.timing_cache
    if path is None:
        return Dependency(None)
    file = Path(path).expanduser()
    if not file.is_file():
        raise OptbuildError(f"target.tensorrt.timing_cache '{path}' is not a file: point it at a TensorRT "
                            "timing cache, or set it to null")
    return Dependency({"sha256": sha256_file(file)}, str(file))


def _precision_stage(config: Config, fp32: Output) -> StageSpec:
    name = config.precision.name
    params: dict[str, Any] = {"target": "nvidia", "precision": name.value, "inputs": as_data(config.model.inputs),
                              "client": client_inputs(config)}
    deps: dict[str, Dependency] = {}
    tensorrt = config.target.tensorrt
    if name is PrecisionName.int4:  # weight-only: no activation ranges, calibration only for AWQ
        deps = quantization_inputs(config)[1] if config.calibrates() else {}
        params["quantizer"] = {"mode": name.value, "calibration_method": tensorrt.int4_method.value,
                               "block_size": tensorrt.int4_block_size}
    elif name.quantized:  # int8 or fp8: the same quantizer, in its mode
        control, deps = quantization_inputs(config)
        params.update(control, keep_float=list(tensorrt.int8_keep_float), quantizer={
            "mode": name.value, "calibration_method": tensorrt.int8_calibration.value,
            "high_precision": tensorrt.int8_high_precision.value,
            "keep_float32_ops": list(tensorrt.half_keep_float32_ops), "model_type": as_data(config.quantize.model_type),
            "smooth_quant_alpha": config.quantize.smooth_quant_alpha})
    elif name in (PrecisionName.fp16, PrecisionName.bf16):
        params["keep_float32_ops"] = list(config.target.tensorrt.half_keep_float32_ops)
        if name is PrecisionName.fp16 and config.calibration.dataset:  # measures float16 overflow on it
            deps = {"calibration": dataset(config.calibration, config)}
    return StageSpec("precision", 10, precision.prepare, "setting precision in the graph (Q/DQ or float16/bfloat16)",
                     inputs={"model.onnx": fp32}, params=params, deps=deps,
                     tools=ONNX_TOOLS + (("nvidia-modelopt",) if name.quantized else ()),
                     reports={"quantization": "", "tensorrt_lint": "lint", "interface": "interface"})


def plan(config: Config, host: Host) -> Plan:
    if config.tune.enabled:  # kept quiet, it would look as if TensorRT had been tuned
        log.warning("tune.enabled applies to target=intel only: TensorRT picks its kernels at engine build "
                    "time; no runtime tuning was done")
    engine = builds_engine(config, host)
    stages, model = model_stages(config)
    stages.append(_precision_stage(config, model.graph))
    prepared = Output("precision", "model.onnx")
    manifest: dict[str, Any] = {"validation_dataset": None, **model.manifest(), "engine_built": engine,
                                "cpu_proxy": None, "tensorrt_lint": None}
    if config.validate.enabled:
        data = dataset(config.validate, config)
        manifest["validation_dataset"] = data.fingerprint
        stages.append(StageSpec("cpu_proxy", 4, proxy.cpu_proxy, "checking the prepared graph on CPU against FP32",
                                inputs={"model.onnx": prepared, "reference.onnx": model.reference},
                                params={"precision": config.precision.name.value, "metrics": metric_specs(config),
                                        "client": client_inputs(config)},
                                deps={"dataset": data},
                                tools=ONNX_TOOLS, reports={"cpu_proxy": "cpu_proxy"}))
    cache = timing_cache(config)
    manifest["timing_cache_in"] = cache.fingerprint
    spec = build_spec(config)
    gated = (GatedRecord("validation"),  # ONNX Runtime on the prepared graph stands in for a missing engine
             GatedRecord("cpu_proxy", "CPU proxy ", "CPU proxy (ONNX Runtime on the prepared ONNX vs FP32): "))
    if not engine:
        kit_inputs = {"model.onnx": prepared}
        kit_params: dict[str, Any] = {"spec": spec}
        kit_deps = {"timing_cache": cache}
        if config.validate.enabled:  # the kit checks its engine on the first validation samples
            kit_inputs["reference.onnx"] = model.reference
            kit_params.update(precision=config.precision.name.value, min_cosine=_cosine_gate(config),
                              client=client_inputs(config))
            kit_deps["dataset"] = dataset(config.validate, config)
        stages.append(StageSpec("kit", 7, kit.make_kit, "writing the TensorRT build kit",
                                inputs=kit_inputs, params=kit_params, deps=kit_deps,
                                tools=ONNX_TOOLS + ("polygraphy",),
                                reports={"trtexec": "trtexec", "engine_check": "engine_check"}))
        files = [*kit.KIT_FILES, *(kit.CHECK_FILES if config.validate.enabled else ()),
                 *([kit.TIMING_CACHE] if cache.location else [])]
        manifest.update(engine=None, statement=KIT_STATEMENT, trtexec=None, engine_check=None)
        return Plan(TargetName.nvidia, stages, {f: Output("kit", f) for f in files}, gated, manifest)
    return Plan(TargetName.nvidia, stages + _engine_stages(config, host, prepared, model.reference, spec, cache),
                {f: Output("engine", f) for f in ENGINE_FILES}, gated,
                {**manifest, "engine": None, "timing_cache_out": None})


def _cosine_gate(config: Config) -> float | None:
    """The recipe's lowest cosine gate, if it has one: what the kit's engine check holds it to."""
    gates = [spec["min"] for spec in metric_specs(config) if spec["name"] == "cosine" and spec.get("min") is not None]
    gates += [config.validate.min_cosine] if config.validate.min_cosine is not None else []
    return min(gates) if gates else None


def _engine_stages(config: Config, host: Host, prepared: Output, fp32: Output, spec: dict[str, Any],
                   cache: Dependency) -> list[StageSpec]:
    on_gpu = Dependency(host.gpu())
    stages = [StageSpec("engine", 4, gpu.build_engine, "building the TensorRT engine", inputs={"model.onnx": prepared},
                        params={"spec": spec},
                        deps={"timing_cache": cache, "gpu": on_gpu}, tools=TRT_TOOLS, platform=True,
                        unstable=ENGINE_UNSTABLE, reports={"engine": "engine", "timing_cache_out": "timing_cache_out"})]
    built = {"model.plan": Output("engine", "model.plan"), "reference.onnx": fp32}
    compatible = config.target.tensorrt.version_compatible
    if config.validate.enabled:
        stages.append(StageSpec("validate", 5, gpu.validate, "validating the engine against the FP32 reference",
                                inputs=built,
                                params={"target": "nvidia", "version_compatible": compatible,
                                        "client": client_inputs(config),
                                        "metrics": metric_specs(config)},
                                deps={"dataset": dataset(config.validate, config), "gpu": on_gpu},
                                tools=TRT_TOOLS + ONNX_TOOLS, platform=True, reports={"validation": "validation"}))
    if config.benchmark.enabled:
        stages.append(StageSpec("benchmark", 4, gpu.benchmark, "timing the engine (CUDA events, back to back) and ONNX Runtime FP32",
                                inputs=built,
                                params={"target": "nvidia", "inputs": client_inputs(config),
                                        "version_compatible": compatible, "iterations": config.benchmark.iterations,
                                        "warmup": config.benchmark.warmup,
                                        "throughput_seconds": config.benchmark.throughput_seconds,
                                        "remeasure": config.benchmark.remeasure},
                                deps={"gpu": on_gpu}, tools=TRT_TOOLS + ONNX_TOOLS, platform=True,
                                reports={"benchmark": "benchmark"}))
    return stages
