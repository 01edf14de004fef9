"""Planning pieces every target shares: the model source, graph surgery, and the dependencies
that name datasets. Imports no target's planner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optbuild.config.choices import AccuracyMetric, DatasetKind, SourceKind
from optbuild.config.datasets import DatasetConfig
from optbuild.config.model import MAX_DIM
from optbuild.config.schema import Config, as_data
from optbuild.data import DatasetRequest, fingerprint
from optbuild.errors import OptbuildError
from optbuild.passes import parse_passes
from optbuild.pipeline.stage import Dependency, Output, StageSpec
from optbuild.serving.contract import pixel_order

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
        preprocess=as_data(model.preprocess), inputs=model_inputs(model_config),
        tokenizer=config.tokenizer or (model_tokenizer(model_config) if config.dataset == DatasetKind.text else None),
        targets=as_data(config.targets),
    )
    return Dependency(fingerprint(request), request.as_data())


def metric_specs(config: Config) -> list[dict[str, Any]]:
    """The validation metrics: the recipe's, or its task's defaults (then measured on the outputs
    they fit). Unknown names and labeled metrics on data without labels fail here, before any
    stage runs."""
    from optbuild.stages.quality import TASK_METRICS, get

    rules = config.validate
    defaults = TASK_METRICS[config.model.task.value]
    if config.model.task.value == "classification" and not rules.unlabeled:  # accuracy first, where labels exist
        defaults = ("top1", *defaults)
    specs = [as_data(spec) for spec in rules.metrics] or [
        {"name": name, "output": None, "params": {}, "min": None, "max": None, "default": True} for name in defaults]
    for index, spec in enumerate(specs):
        metric = get(spec["name"])
        if metric.needs_labels and rules.unlabeled:
            raise OptbuildError(f"validate.metrics[{index}] {metric.name} needs labels but validate.dataset="
                                f"{as_data(rules.dataset)} has none: use a labeled set or drop it")
    return specs


def model_inputs(config: Config) -> list[dict[str, Any]]:
    """The model's inputs as stages and datasets take them: shapes at their opt sizes."""
    return [{"name": spec.name, "dtype": spec.dtype.value, "shape": spec.concrete("opt"), "low": spec.low,
             "high": spec.high} for spec in config.model.inputs]


def client_inputs(config: Config) -> list[dict[str, Any]]:
    """The artifact's input contract (serving/contract.py): the model's inputs as a client sends
    them. With serve.embed_preprocess, the image input becomes 8-bit pixels in serve.layout and
    serve.color, with the recipe's mean/std (and resize) done inside."""
    embeds, serve, contract = config.embeds_preprocess(), config.serve, []
    for spec, plain in zip(config.model.inputs, model_inputs(config)):
        dynamic = {axis: [spec.range_of(axis).min, spec.range_of(axis).max] for axis, _ in spec.dynamic()}
        entry = {**plain, "dynamic": dynamic, "layout": None, "color": None, "preprocess": None}
        if embeds and spec is config.model.image_input():
            channels, pre = plain["shape"][1], config.model.preprocess
            order = pixel_order(serve.layout.value)
            axis_of = {old: new for new, old in enumerate(order)}
            dynamic = {axis_of[axis]: bounds for axis, bounds in dynamic.items()}
            if serve.resize:  # any H×W: OpenVINO resizes inside
                dynamic.update({axis_of[2]: [1, MAX_DIM], axis_of[3]: [1, MAX_DIM]})
            entry.update(dtype="uint8", shape=[plain["shape"][i] for i in order], low=0, high=256,
                         dynamic={str(axis): bounds for axis, bounds in sorted(dynamic.items())},
                         layout=serve.layout.value, color=serve.color.value if channels == 3 else "GRAY",
                         preprocess={"mean": list(pre.mean[:channels]), "std": list(pre.std[:channels]),
                                     "model_dtype": plain["dtype"], "model_layout": "NCHW",
                                     "resize_inside": serve.resize,
                                     "geometry": {"resize": pre.resize, "crop": pre.crop, "fit": pre.fit.value}})
        else:
            entry["dynamic"] = {str(axis): bounds for axis, bounds in dynamic.items()}
        contract.append(entry)
    return contract


def dynamic_axes(config: Config) -> dict[str, dict[int, str]]:
    """Each input's dynamic dimensions by axis, named (an exporter keeps them dynamic)."""
    return {spec.name: {axis: str(spec.shape[axis]) if isinstance(spec.shape[axis], str) else f"{spec.name}_{axis}"
                        for axis, _ in spec.dynamic()} for spec in config.model.inputs if spec.dynamic()}


def model_tokenizer(config: Config) -> str | None:
    """Where a huggingface model keeps its tokenizer (its folder, or the package's zip)."""
    if config.model.source != SourceKind.huggingface:
        return None
    from optbuild.sources.huggingface import model_location

    return model_location(config.model.path, config.model.weights)


def quantization_inputs(config: Config) -> tuple[dict[str, Any], dict[str, Dependency]]:
    """(params, deps) a quantizing stage adds: the calibration set, and for
    quantize.accuracy_control the validation set its drop is measured on."""
    deps = {"calibration": dataset(config.calibration, config)}
    control = config.quantize.accuracy_control
    if not control.enabled:
        return {}, deps
    deps["validation"] = dataset(config.validate, config)
    if control.metric not in AccuracyMetric.values():
        from optbuild.stages.quality import get

        metric = get(control.metric)
        if not metric.higher_is_better or (metric.needs_labels and config.validate.unlabeled):
            raise OptbuildError(f"quantize.accuracy_control.metric={control.metric} cannot be optimized: use a "
                                "metric where higher is better (and labels only with a labeled validation set)")
    return {"accuracy_control": as_data(control)}, deps


def source_stages(config: Config) -> tuple[list[StageSpec], Output]:
    """Stages that yield the FP32 ONNX model, and which output it is."""
    model = config.model
    if model.source == SourceKind.onnx.value:
        from optbuild.sources.onnx_file import import_onnx, source_identity

        assert model.path is not None  # the schema requires it for onnx sources
        source = StageSpec("source", 3, import_onnx, "reading the ONNX model", tools=("onnx",),
                           deps={"model": Dependency(source_identity(model.path), model.path)})
        return [source], Output("source", "model.onnx")
    if model.source == SourceKind.huggingface:
        return _transformer_stages(config)
    if model.source not in SourceKind.values():  # an installed plugin (entry point)
        from optbuild.sources import plugin_identity, write_plugin_onnx

        model_data = as_data(model)
        keyed = {k: v for k, v in model_data.items() if k not in ("path", "preprocess")}
        source = StageSpec("source", 2, write_plugin_onnx, "writing the ONNX model (source plugin)",
                           params={"config": keyed}, tools=("onnx",),
                           deps={"model": Dependency(plugin_identity(model.source, model_data), model_data)})
        return [source], Output("source", "model.onnx")
    return _torch_stages(config)


def _transformer_stages(config: Config) -> tuple[list[StageSpec], Output]:
    from optbuild.sources.huggingface import FILES, fetch_model, identity, model_location
    from optbuild.stages.export_transformer import export_transformer

    model = config.model
    location = model_location(model.path, model.weights)
    source = StageSpec("source", 1, fetch_model, "reading the transformers model", tools=(),
                       deps={"model": Dependency(identity(model.path, model.weights), location)})
    ranges = {key: [spec.range_of(axis).min, spec.range_of(axis).max]
              for spec in model.inputs for axis, key in dynamic_axes(config).get(spec.name, {}).items()}
    export = StageSpec(
        "export", 1, export_transformer, "exporting to ONNX (torch.export)",
        inputs={name: Output("source", name) for name in FILES if name in ("config.json", "model.safetensors")},
        params={"name": model.name, "inputs": model_inputs(config), "dynamic": dynamic_axes(config),
                "ranges": {str(key): bounds for key, bounds in ranges.items()},
                "output_names": model.output_names, "opset": config.export.opset,
                "pooling": model.pooling.value, "normalize": model.normalize},
        tools=TORCH_TOOLS + ("onnx", "onnxscript", "transformers"))
    return [source, export], Output("export", "model.onnx")


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
        params={**identity, "seed": model.seed, "inputs": model_inputs(config), "dynamic": dynamic_axes(config),
                "output_names": model.output_names, "opset": config.export.opset},
        tools=TORCH_TOOLS + ("onnx",),
    )
    return [source, export], Output("export", "model.onnx")


def surgery_stage(config: Config, model: Output) -> StageSpec:
    from optbuild.stages.surgery import run_passes

    passes = [p.stage_entry() for p in parse_passes(config.passes)]
    # The declared inputs give the checks their sizes: a 640x640 detector is probed at 640x640.
    return StageSpec("surgery", 3, run_passes, "graph surgery passes", inputs={"model.onnx": model},
                     params={"passes": passes, "inputs": as_data(config.model.inputs)},
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


def check_declared_io(config: Config) -> None:
    """An ONNX file's inputs against model.inputs (names, types, ranks, sizes) and its outputs
    against validate.metrics (names, ranks), before any stage runs, unless a pass changes the
    interface: then the surgery's graph is checked when it exists."""
    from optbuild.passes import get

    if config.model.source != SourceKind.onnx or any(get(p.name).changes_inputs for p in parse_passes(config.passes)):
        return
    import onnx

    from optbuild.sources.onnx_file import checked_path
    from optbuild.stages.model_inputs import check_inputs

    path = checked_path(str(config.model.path))
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - the source stage says what is wrong with the file
        return
    check_inputs(model, as_data(config.model.inputs))
    if config.validate.enabled:
        _check_metric_outputs(config, {o.name: len(o.type.tensor_type.shape.dim) for o in model.graph.output})


def _check_metric_outputs(config: Config, ranks: dict[str, int]) -> None:
    from optbuild.stages.quality import get

    for index, spec in enumerate(config.validate.metrics):
        metric = get(spec.name)
        if spec.output is not None and spec.output not in ranks:
            raise OptbuildError(f"validate.metrics[{index}] {spec.name} names output '{spec.output}', which the "
                                f"model does not have (its outputs: {', '.join(ranks)})")
        fitting = [name for name, rank in ranks.items() if not metric.ranks or rank in metric.ranks]
        if spec.output is not None and spec.output not in fitting:
            raise OptbuildError(f"validate.metrics[{index}] {spec.name} does not fit output '{spec.output}' (rank "
                                f"{ranks[spec.output]}; it needs rank {' or '.join(map(str, metric.ranks))})")
        if spec.output is None and not fitting:
            raise OptbuildError(f"validate.metrics[{index}] {spec.name} fits none of the outputs "
                                f"({', '.join(f'{n}: rank {r}' for n, r in ranks.items())})")


def model_stages(config: Config) -> tuple[list[StageSpec], ModelGraphs]:
    """source (→ export) → surgery: the FP32 graph every target starts from."""
    check_declared_io(config)
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
