"""Planning pieces every target shares: the model source, graph surgery, and the dependencies
that name datasets. Imports no target's planner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optbuild.config.schema import Config, DatasetConfig, SourceKind, as_data
from optbuild.data import DatasetRequest, fingerprint
from optbuild.passes import parse_passes
from optbuild.pipeline.stage import Dependency, Output, StageSpec

TORCH_TOOLS = ("torch", "torchvision", "efficientnet-lite-pytorch")
ONNX_TOOLS = ("onnx", "onnx-graphsurgeon", "onnxruntime")
OV_TOOLS = ("openvino", "nncf")
TORCH_SOURCES = (SourceKind.torchvision, SourceKind.efficientnet_lite0)


def dataset(config: DatasetConfig, model_config: Config) -> Dependency:
    """A calibration/validation set: its request (paths included) as the location, its content
    fingerprint as what the key sees."""
    model = model_config.model
    request = DatasetRequest(
        kind=as_data(config.dataset), path=config.path, num_samples=config.num_samples, seed=config.seed,
        key=config.key, split=config.split, label_map=as_data(config.label_map) or None,
        preprocess=as_data(model.preprocess), input_shape=list(model.inputs[0].shape),
    )
    return Dependency(fingerprint(request), request.as_data())


def quantization_inputs(config: Config) -> tuple[dict[str, Any], dict[str, Dependency]]:
    """(params, deps) a quantizing stage adds: the calibration set, and for
    quantize.accuracy_control the validation set its drop is measured on."""
    deps = {"calibration": dataset(config.calibration, config)}
    control = config.quantize.accuracy_control
    if not control.enabled:
        return {}, deps
    deps["validation"] = dataset(config.validate, config)
    return {"accuracy_control": as_data(control)}, deps


def source_stages(config: Config) -> tuple[list[StageSpec], Output]:
    """Stages that yield the FP32 ONNX model, and which output it is."""
    model = config.model
    if model.source == SourceKind.onnx.value:
        from optbuild.sources.onnx_file import import_onnx, source_identity

        assert model.path is not None  # the schema requires it for onnx sources
        source = StageSpec("source", 2, import_onnx, "reading the ONNX model", tools=("onnx",),
                           deps={"model": Dependency(source_identity(model.path), model.path)})
        return [source], Output("source", "model.onnx")
    if model.source not in SourceKind.values():  # an installed plugin (entry point)
        from optbuild.sources import plugin_identity, write_plugin_onnx

        model_data = as_data(model)
        keyed = {k: v for k, v in model_data.items() if k not in ("path", "preprocess")}
        source = StageSpec("source", 2, write_plugin_onnx, "writing the ONNX model (source plugin)",
                           params={"config": keyed}, tools=("onnx",),
                           deps={"model": Dependency(plugin_identity(model.source, model_data), model_data)})
        return [source], Output("source", "model.onnx")
    return _torch_stages(config)


def _torch_stages(config: Config) -> tuple[list[StageSpec], Output]:
    from optbuild.sources.torch_models import LOCAL_WEIGHTS, fetch_weights, local_weights, source_identity
    from optbuild.stages.export import export_onnx

    model = config.model
    checkpoint = local_weights(model.weights)
    weights = LOCAL_WEIGHTS if checkpoint else model.weights  # a path never enters a key
    identity = {"source": model.source, "name": model.name, "weights": weights}
    weights_dep = Dependency(source_identity(model.source, model.name, model.weights),
                             str(checkpoint) if checkpoint else None)
    source = StageSpec("source", 2, fetch_weights, "loading model weights", params=identity,
                       deps={"checkpoint": weights_dep},
                       tools=TORCH_TOOLS if model.weights is None else ())
    export = StageSpec(
        "export", 1, export_onnx, "exporting to ONNX",
        inputs={"weights.pt": Output("source", "weights.pt")} if model.weights is not None else {},
        params={**identity, "seed": model.seed, "inputs": as_data(model.inputs),
                "output_names": model.output_names, "opset": config.export.opset},
        tools=TORCH_TOOLS + ("onnx",),
    )
    return [source, export], Output("export", "model.onnx")


def surgery_stage(config: Config, model: Output) -> StageSpec:
    from optbuild.stages.surgery import run_passes

    passes = [p.stage_entry() for p in parse_passes(config.passes)]
    return StageSpec("surgery", 2, run_passes, "graph surgery passes", inputs={"model.onnx": model},
                     params={"passes": passes},
                     tools=ONNX_TOOLS + ("onnxslim",), reports={"surgery": "passes"})


@dataclass(frozen=True)
class ModelGraphs:
    """What the shared stages give a target: the FP32 graph to build from, and the graph the
    artifact is validated against. That is the same graph unless a pass skipped its own check
    (`verify: false`): then validation compares with the model as it was before surgery, so an
    unchecked pass cannot change what the model computes unnoticed."""

    graph: Output
    reference: Output
    unverified: tuple[str, ...]

    def manifest(self) -> dict[str, Any]:
        return {"unverified_passes": list(self.unverified) or None}


def model_stages(config: Config) -> tuple[list[StageSpec], ModelGraphs]:
    """source (→ export) → surgery: the FP32 graph every target starts from."""
    stages, fp32 = source_stages(config)
    surgery = surgery_stage(config, fp32)
    stages.append(surgery)
    unverified = tuple(p["name"] for p in surgery.params["passes"] if p["params"].get("verify") is False)
    graph = Output("surgery", "model.onnx")
    return stages, ModelGraphs(graph, fp32 if unverified else graph, unverified)


def torch_baseline(config: Config) -> dict[str, Any] | None:
    """The torch eager model a benchmark also times, when the source is a torch model."""
    model = config.model
    if not (config.benchmark.torch_baseline and model.source in TORCH_SOURCES):
        return None
    return {"source": model.source, "name": model.name, "seed": model.seed}
