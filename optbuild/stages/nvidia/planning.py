"""The nvidia target's stages after the shared source → export → surgery:

    precision → cpu_proxy → kit                          (target.engine=kit)
    precision → cpu_proxy → engine → validate → benchmark (TensorRT and a GPU present)

`target.engine=auto` takes the second path when TensorRT and a GPU are here and otherwise fails
before anything runs, saying what is missing; `build` insists on it; `kit` stops before the engine.
"""

from __future__ import annotations

import ctypes
import importlib.util
from pathlib import Path
from typing import Any

from optbuild.errors import OptbuildError
from optbuild.plan import ONNX_TOOLS, _dataset, accuracy_control, plain
from optbuild.runner import StageSpec
from optbuild.schema import Config, Engine, PrecisionName

TRT_TOOLS = ("tensorrt",)


def _cuda_devices() -> int | None:
    """GPUs the CUDA driver sees; None without a driver. Cheap: no torch, no TensorRT."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def missing_for_engine() -> list[str]:
    """What this machine lacks to build a TensorRT engine (empty when nothing is missing)."""
    missing = []
    spec = importlib.util.find_spec("tensorrt")
    if spec is None or spec.origin is None:  # a namespace package (e.g. type stubs only) is not TensorRT
        missing.append("TensorRT (the tensorrt Python package) is not installed")
    devices = _cuda_devices()
    if devices is None:
        missing.append("no NVIDIA GPU driver (libcuda) was found")
    elif devices == 0:
        missing.append("the CUDA driver sees no GPU")
    return missing


def builds_engine(config: Config) -> bool:
    mode = config.target.engine
    if mode is Engine.kit:
        return False
    missing = missing_for_engine()
    if missing:
        asked = "target.engine=build" if mode is Engine.build else "target=nvidia"
        raise OptbuildError(f"{asked} cannot build the TensorRT engine here: {' and '.join(missing)}; run on a "
                            "machine with TensorRT and an NVIDIA GPU, or pass target.engine=kit to stop before "
                            "the engine and publish a build kit")
    return True


def artifact_stage(config: Config) -> str:
    return "engine" if builds_engine(config) else "kit"


def build_spec(config: Config) -> dict[str, Any]:
    """The engine's build settings as data (no paths): build_spec.json and part of the key."""
    from optbuild.stages.nvidia.engine import SPEC_SCHEMA

    settings = plain(config.target.tensorrt)
    settings.pop("timing_cache")  # a path: its content digest is keyed instead
    settings.pop("int8_keep_float")  # shapes the graph (precision stage), not the builder
    return {"schema": SPEC_SCHEMA, "precision": config.precision.name.value,
            "inputs": plain(config.model.inputs), "tensorrt": settings}


def _timing_cache(config: Config) -> tuple[dict[str, Any], dict[str, Any]]:
    """(external, locations) for a declared timing-cache input."""
    from optbuild.digest import sha256_file

    path = config.target.tensorrt.timing_cache
    if path is None:
        return {"timing_cache": None}, {}
    file = Path(path).expanduser()
    if not file.is_file():
        raise OptbuildError(f"target.tensorrt.timing_cache '{path}' is not a file: point it at a TensorRT "
                            "timing cache, or set it to null")
    return {"timing_cache": {"sha256": sha256_file(file)}}, {"timing_cache_path": str(file)}


def _check_settings(config: Config) -> None:
    trt = config.target.tensorrt
    if not 0 <= trt.optimization_level <= 5:
        raise OptbuildError(f"target.tensorrt.optimization_level is {trt.optimization_level}: use 0..5")
    if trt.workspace_mib is not None and trt.workspace_mib < 1:
        raise OptbuildError("target.tensorrt.workspace_mib must be a positive number of MiB, or null")
    names = {spec.name for spec in config.model.inputs}
    for number, profile in enumerate(trt.profiles):
        for shape_range in profile.shapes:
            if shape_range.input not in names:
                raise OptbuildError(f"target.tensorrt.profiles[{number}] names input '{shape_range.input}', which "
                                    f"is not in model.inputs ({', '.join(sorted(names))})")


def nvidia_stages(config: Config) -> list[StageSpec]:
    from optbuild.stages.nvidia import gpu, kit, precision, proxy

    _check_settings(config)
    if config.tune.enabled:  # kept quiet would look as if TensorRT had been tuned
        import logging

        logging.getLogger("optbuild").warning("tune.enabled applies to target=intel only: TensorRT picks its "
                                              "kernels at engine build time; no runtime tuning was done")
    engine = builds_engine(config)
    shape = config.model.inputs[0].shape
    preprocess = plain(config.model.preprocess)
    name = config.precision.name
    params: dict[str, Any] = {"target": "nvidia", "precision": name.value, "input_shape": shape,
                              "inputs": plain(config.model.inputs)}
    external: dict[str, Any] = {}
    locations: dict[str, Any] = {}
    # int8 calibrates on the data; fp16 measures float16 overflow on it when there is one.
    if name is PrecisionName.int8 or (name is PrecisionName.fp16 and config.calibration.dataset):
        args, fingerprint = _dataset(config.calibration, preprocess, shape)
        params["calibration"] = {k: v for k, v in args.items() if k != "path"}
        external["calibration"] = fingerprint
        locations["calibration"] = args
    if name is PrecisionName.int8:
        params["keep_float"] = list(config.target.tensorrt.int8_keep_float)
        control_params, control_external, control_locations = accuracy_control(config, preprocess, shape)
        params.update(control_params)
        external.update(control_external)
        locations.update(control_locations)
    stages = [StageSpec("precision", 2, precision.prepare, inputs={"model.onnx": ("surgery", "model.onnx")},
                        params=params, external=external, locations=locations, tools=ONNX_TOOLS)]
    compared = {"model.onnx": ("precision", "model.onnx"), "reference.onnx": ("surgery", "model.onnx")}
    if config.validate.enabled:
        args, fingerprint = _dataset(config.validate, preprocess, shape)
        stages.append(StageSpec("cpu_proxy", 2, proxy.cpu_proxy, inputs=compared,
                                params={"precision": name.value, "input_shape": shape,
                                        "dataset": {k: v for k, v in args.items() if k != "path"}},
                                external={"dataset": fingerprint}, locations={"dataset": args},
                                tools=ONNX_TOOLS))
    cache_external, cache_location = _timing_cache(config)
    spec = build_spec(config)
    if not engine:
        stages.append(StageSpec("kit", 1, kit.make_kit, inputs={"model.onnx": ("precision", "model.onnx")},
                                params={"spec": spec}, external=cache_external, locations=cache_location,
                                tools=ONNX_TOOLS))
        return stages
    from optbuild.stages.nvidia.engine import gpu_info

    stages.append(StageSpec("engine", 1, gpu.build_engine, inputs={"model.onnx": ("precision", "model.onnx")},
                            params={"spec": spec}, external={**cache_external, "gpu": gpu_info()},
                            locations=cache_location, tools=TRT_TOOLS, platform=True))
    built = {"model.plan": ("engine", "model.plan"), "reference.onnx": ("surgery", "model.onnx")}
    compatible = config.target.tensorrt.version_compatible
    if config.validate.enabled:
        args, fingerprint = _dataset(config.validate, preprocess, shape)
        stages.append(StageSpec("validate", 2, gpu.validate, inputs=built,
                                params={"target": "nvidia", "input_shape": shape, "version_compatible": compatible,
                                        "dataset": {k: v for k, v in args.items() if k != "path"}},
                                external={"dataset": fingerprint, "gpu": gpu_info()}, locations={"dataset": args},
                                tools=TRT_TOOLS + ONNX_TOOLS, platform=True))
    if config.benchmark.enabled:
        stages.append(StageSpec("benchmark", 1, gpu.benchmark, inputs=built,
                                params={"target": "nvidia", "input_shape": shape, "version_compatible": compatible,
                                        "iterations": config.benchmark.iterations, "warmup": config.benchmark.warmup},
                                external={"gpu": gpu_info()}, tools=TRT_TOOLS + ONNX_TOOLS, platform=True))
    return stages


def manifest_fields(config: Config, results: dict[str, Any]) -> dict[str, Any]:
    """The nvidia part of the manifest: whether an engine exists, and what stands in for it."""
    engine = results.get("engine")
    proxy = results["cpu_proxy"].data["cpu_proxy"] if "cpu_proxy" in results else None
    timing = (engine or results["kit"]).material["external"].get("timing_cache")
    fields: dict[str, Any] = {
        "engine_built": engine is not None,
        "cpu_proxy": proxy,
        "tensorrt_lint": results["precision"].data.get("lint"),
        "timing_cache_in": timing,
    }
    if engine is None:
        fields["engine"] = None
        fields["statement"] = ("No TensorRT engine was built: this is a build kit (target.engine=kit). "
                               "The accuracy numbers are the CPU proxy (ONNX Runtime on the prepared ONNX), "
                               "not the engine. Build model.plan on a GPU machine with `python build_engine.py` "
                               "or `sh trtexec.sh`.")
        fields["trtexec"] = results["kit"].data["trtexec"]
    else:
        fields["engine"] = engine.data["engine"]
        fields["timing_cache_out"] = {"sha256": engine.outputs["timing.cache"].sha256}
    return fields
