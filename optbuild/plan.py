"""From a validated config to the list of stages to run, each declaring exactly what it reads.

Cache keys see config slices and content digests, never paths: `locations` carry the paths a
stage needs at run time, while `external` carries the digests of those files.
"""

from __future__ import annotations

from dataclasses import asdict
from enum import Enum
from typing import Any

from optbuild.passes import parse_passes
from optbuild.runner import StageSpec
from optbuild.sources import BUILTIN as BUILTIN_SOURCES
from optbuild.schema import Config, DatasetConfig, SourceKind, TargetName

TORCH_TOOLS = ("torch", "torchvision", "efficientnet-lite-pytorch")
ONNX_TOOLS = ("onnx", "onnx-graphsurgeon", "onnxruntime")
OV_TOOLS = ("openvino", "nncf")


def plain(value: Any) -> Any:
    """Dataclasses and enums as JSON-able data."""
    if hasattr(value, "__dataclass_fields__"):
        value = asdict(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value.value if isinstance(value, Enum) else value


def _dataset(config: DatasetConfig, preprocess: dict[str, Any], shape: list[int]) -> tuple[dict, dict]:
    """(arguments for load_dataset, their fingerprint) for a calibration/validation set."""
    from optbuild.datasets import dataset_fingerprint

    args = {
        "kind": plain(config.dataset),
        "path": config.path,
        "num_samples": config.num_samples,
        "seed": config.seed,
        "key": config.key,
        "split": config.split,
        "label_map": plain(config.label_map) or None,
        "preprocess": preprocess,
    }
    return args, dataset_fingerprint(input_shape=shape, **args)


def accuracy_control(config: Config, preprocess: dict[str, Any], shape: list[int]) -> tuple[dict, dict, dict]:
    """(params, external, locations) a quantizing stage adds for quantize.accuracy_control: it
    measures the drop on the validation set. Empty when the control is off."""
    control = config.quantize.accuracy_control
    if not control.enabled:
        return {}, {}, {}
    args, fingerprint = _dataset(config.validate, preprocess, shape)
    params = {"accuracy_control": plain(control), "validation": {k: v for k, v in args.items() if k != "path"}}
    return params, {"validation": fingerprint}, {"validation": args}


def _source_stages(config: Config) -> tuple[list[StageSpec], tuple[str, str]]:
    """Stages that yield the FP32 ONNX model, and where it ends up."""
    model = config.model
    inputs = plain(model.inputs)
    if model.source == SourceKind.onnx:
        from optbuild.sources.onnx_file import import_onnx, source_identity

        source = StageSpec("source", 1, import_onnx, external=source_identity(model.path),
                           locations={"path": model.path}, tools=("onnx",))
        return [source], ("source", "model.onnx")
    if plain(model.source) not in BUILTIN_SOURCES:  # an installed plugin (entry point)
        from optbuild.sources import plugin_identity, write_plugin_onnx

        model_data = plain(model)
        keyed = {k: v for k, v in model_data.items() if k not in ("path", "preprocess")}
        source = StageSpec("source", 1, write_plugin_onnx, params={"model": keyed},
                           external=plugin_identity(model_data["source"], model_data),
                           locations={"model": model_data}, tools=("onnx",))
        return [source], ("source", "model.onnx")

    from optbuild.sources.torch_models import LOCAL_WEIGHTS, fetch_weights, local_weights, source_identity
    from optbuild.stages.export import export_onnx

    checkpoint = local_weights(model.weights)
    weights = LOCAL_WEIGHTS if checkpoint else model.weights  # a path never enters a key
    identity = {"source": plain(model.source), "name": model.name, "weights": weights}
    source = StageSpec("source", 1, fetch_weights, params=identity,
                       external=source_identity(plain(model.source), model.name, model.weights),
                       locations={"weights_path": str(checkpoint)} if checkpoint else {},
                       tools=TORCH_TOOLS if model.weights is None else ())
    export = StageSpec(
        "export", 1, export_onnx,
        inputs={"weights.pt": ("source", "weights.pt")} if model.weights is not None else {},
        params={**identity, "seed": model.seed, "inputs": inputs,
                "output_names": model.output_names, "opset": config.export.opset},
        tools=TORCH_TOOLS + ("onnx",),
    )
    return [source, export], ("export", "model.onnx")


def artifact_stage(config: Config) -> str:
    """The stage whose outputs are the published artifact files."""
    if config.target.name is TargetName.nvidia:
        from optbuild.stages.nvidia.planning import artifact_stage as nvidia_artifact

        return nvidia_artifact(config)
    return "build"


def plan(config: Config) -> list[StageSpec]:
    from optbuild.stages import evaluate, intel
    from optbuild.stages.surgery import run_passes

    stages, fp32_onnx = _source_stages(config)
    shape = config.model.inputs[0].shape
    preprocess = plain(config.model.preprocess)
    passes = [p.stage_entry() for p in parse_passes(config.passes)]
    stages.append(StageSpec("surgery", 2, run_passes, inputs={"model.onnx": fp32_onnx},
                            params={"passes": passes}, tools=ONNX_TOOLS + ("onnxslim",)))
    if config.target.name is TargetName.nvidia:  # source, export, surgery are shared with intel
        from optbuild.stages.nvidia.planning import nvidia_stages

        return stages + nvidia_stages(config)

    precision = plain(config.precision)
    # Only int8 changes this stage's output: fp32/fp16/bf16 builds share one conversion.
    quantize_params: dict[str, Any] = {"int8": precision["name"] == "int8", "input_shape": shape,
                                       "inputs": plain(config.model.inputs)}
    external: dict[str, Any] = {}
    locations: dict[str, Any] = {}
    if quantize_params["int8"]:
        args, fingerprint = _dataset(config.calibration, preprocess, shape)
        quantize_params["calibration"] = {k: v for k, v in args.items() if k != "path"}
        external["calibration"] = fingerprint
        locations["calibration"] = args  # same arguments, path included, for the worker
        control_params, control_external, control_locations = accuracy_control(config, preprocess, shape)
        quantize_params.update(control_params)
        external.update(control_external)
        locations.update(control_locations)
    stages.append(StageSpec("quantize", 3, intel.quantize, inputs={"model.onnx": ("surgery", "model.onnx")},
                            params=quantize_params, external=external, locations=locations,
                            tools=OV_TOOLS))
    device = config.target.device
    stages.append(StageSpec("build", 2, intel.save_ir,
                            inputs={"model.xml": ("quantize", "model.xml"), "model.bin": ("quantize", "model.bin")},
                            params={**precision, "device": device}, tools=OV_TOOLS, platform=True))
    if config.tune.enabled:  # writes the runtime.json that validate, benchmark and the package use
        from optbuild.stages import tune

        built = {name: ("build", name) for name in ("model.xml", "model.bin", "runtime.json")}
        stages.append(StageSpec("tune", 1, tune.tune, inputs=built, params=tune.params_of(config),
                                tools=OV_TOOLS, platform=True))

    artifact_inputs = {
        "model.xml": ("build", "model.xml"),
        "model.bin": ("build", "model.bin"),
        "reference.onnx": ("surgery", "model.onnx"),
    }
    # Validation checks the artifact as deployed: compiled with the runtime.json it ships with.
    validated = {**artifact_inputs, "runtime.json": ("tune" if config.tune.enabled else "build", "runtime.json")}
    if config.validate.enabled:
        args, fingerprint = _dataset(config.validate, preprocess, shape)
        stages.append(StageSpec(
            "validate", 2, evaluate.validate, inputs=validated,
            params={"input_shape": shape, "dataset": {k: v for k, v in args.items() if k != "path"}},
            external={"dataset": fingerprint}, locations={"dataset": args},
            tools=OV_TOOLS + ONNX_TOOLS, platform=True))
    if config.benchmark.enabled:
        from optbuild.stages import benchmark

        model = config.model
        torch_source = model.source in (SourceKind.torchvision, SourceKind.efficientnet_lite0)
        torch_baseline = config.benchmark.torch_baseline and torch_source
        measured = dict(validated)
        if torch_baseline and model.weights is not None:
            measured["weights.pt"] = ("source", "weights.pt")
        stages.append(StageSpec(
            "benchmark", 2, benchmark.benchmark, inputs=measured,
            params={"inputs": plain(model.inputs), "iterations": config.benchmark.iterations,
                    "warmup": config.benchmark.warmup, "throughput_seconds": config.benchmark.throughput_seconds,
                    "torch": {"source": plain(model.source), "name": model.name, "seed": model.seed}
                    if torch_baseline else None},
            tools=OV_TOOLS + ONNX_TOOLS + (TORCH_TOOLS if torch_baseline else ()), platform=True))
    return stages
