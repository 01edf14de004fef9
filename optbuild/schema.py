"""Typed schema of the composed config.

The same dataclasses serve twice: Hydra/OmegaConf use them as the structured base config (typos
in recipe files and plain overrides fail during composition, with the full key), and pydantic
validates the composed result again with `extra="forbid"`, because `+key=value` bypasses
OmegaConf's struct checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from omegaconf import MISSING
from pydantic import ConfigDict

_STRICT = ConfigDict(extra="forbid")
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


class TargetName(str, Enum):
    intel = "intel"
    nvidia = "nvidia"


class Engine(str, Enum):
    auto = "auto"  # build the device step when the device is here, else fail saying what is missing
    build = "build"  # must build
    kit = "kit"  # stop before the steps that need the target's device


class PrecisionName(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"
    int8 = "int8"


class InferencePrecision(str, Enum):
    f32 = "f32"
    f16 = "f16"
    bf16 = "bf16"


class SourceKind(str, Enum):
    torchvision = "torchvision"
    efficientnet_lite0 = "efficientnet_lite0"
    onnx = "onnx"


class DatasetKind(str, Enum):
    sample_photos = "sample_photos"
    image_folder = "image_folder"
    npz = "npz"
    fashion_mnist = "fashion_mnist"  # labeled; the Debian package dataset-fashion-mnist


class AccuracyMetric(str, Enum):
    auto = "auto"  # top1 when the validation set has labels, else agreement
    top1 = "top1"  # top-1 accuracy against the labels
    agreement = "agreement"  # top-1 agreement with the FP32 reference


class Objective(str, Enum):
    latency = "latency"  # lowest batch-1 median latency
    throughput = "throughput"  # most inferences per second (async, all streams busy)


@dataclass
class InputSpec:
    __pydantic_config__ = _STRICT
    name: str = "input"
    shape: list[int] = field(default_factory=lambda: [1, 3, 224, 224])


@dataclass
class Preprocess:
    __pydantic_config__ = _STRICT
    resize: int = 256
    crop: int = 224
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))


@dataclass
class ModelConfig:
    __pydantic_config__ = _STRICT
    # A SourceKind, or the name of a source plugin (entry point group `optbuild.sources`).
    source: str = MISSING
    name: str = MISSING
    # torchvision: a weights name (e.g. IMAGENET1K_V2) or null for seeded random init.
    # efficientnet_lite0: "imagenet" (the pip-shipped file) or null.
    weights: Optional[str] = None
    path: Optional[str] = None  # onnx source: the model file
    seed: int = 0
    inputs: list[InputSpec] = field(default_factory=lambda: [InputSpec()])
    output_names: list[str] = field(default_factory=lambda: ["logits"])
    preprocess: Preprocess = field(default_factory=Preprocess)


@dataclass
class ExportConfig:
    __pydantic_config__ = _STRICT
    opset: int = 17


@dataclass
class DatasetConfig:
    __pydantic_config__ = _STRICT
    dataset: Optional[DatasetKind] = None
    path: Optional[str] = None
    num_samples: int = 300
    seed: int = 0
    key: Optional[str] = None  # npz: the array's name
    split: Optional[str] = None  # fashion_mnist: test (default) or train
    # Labels to model outputs: dataset class name -> output index (or a list of accepted indices).
    # Samples of classes left out are skipped. Empty: class i -> output i (image_folder: sorted
    # class-folder names; fashion_mnist: its ten classes in their official order). Not Optional:
    # Hydra cannot override a None dict with `key={a: 1}`.
    label_map: dict[str, Any] = field(default_factory=dict)


@dataclass
class ValidateConfig(DatasetConfig):
    __pydantic_config__ = _STRICT
    enabled: bool = True
    dataset: Optional[DatasetKind] = DatasetKind.sample_photos
    num_samples: int = 32
    seed: int = 1
    # Gates: a build that misses one is published as failed, never as `latest`.
    min_top1_agreement: Optional[float] = None  # with the FP32 reference, 0..1
    min_cosine: Optional[float] = None
    max_top1_drop: Optional[float] = None  # labeled data: reference top-1 minus artifact top-1, 0..1
    max_top5_drop: Optional[float] = None
    min_top1: Optional[float] = None  # labeled data: the artifact's top-1 accuracy, 0..1


@dataclass
class AccuracyControl:
    """INT8 that keeps its most sensitive layers in higher precision until the drop on the
    validation set is at most `max_drop` (intel: NNCF's quantize_with_accuracy_control)."""

    __pydantic_config__ = _STRICT
    enabled: bool = False
    max_drop: float = 0.01  # absolute, in the metric's 0..1 units (0.01 = one point)
    metric: AccuracyMetric = AccuracyMetric.auto
    # A bound on the search (null: until max_drop is met): intel, NNCF's revert-and-check rounds;
    # nvidia, the number of layers it may keep in float.
    max_iterations: Optional[int] = None


@dataclass
class QuantizeConfig:
    __pydantic_config__ = _STRICT
    accuracy_control: AccuracyControl = field(default_factory=AccuracyControl)


@dataclass
class BenchmarkConfig:
    __pydantic_config__ = _STRICT
    enabled: bool = True
    iterations: int = 50
    warmup: int = 10
    throughput_seconds: float = 3.0  # async throughput: how long each model runs with all requests busy
    torch_baseline: bool = True  # also time the torch eager model when the source is a torch model


@dataclass
class TuneConfig:
    """Runtime tuning (intel): a bounded search over these settings for the objective. The
    winner goes into the manifest and the artifact's runtime.json."""

    __pydantic_config__ = _STRICT
    enabled: bool = False
    objective: Objective = Objective.throughput
    hints: list[str] = field(default_factory=lambda: ["LATENCY", "THROUGHPUT"])
    streams: list[int] = field(default_factory=lambda: [0, 1, 2])  # 0: the hint's own choice
    batches: list[int] = field(default_factory=lambda: [1, 2, 4])
    # null: what the precision allows (int8: the device default and f32; fp32: f32 only; ...)
    inference_precisions: Optional[list[InferencePrecision]] = None
    seconds: float = 1.5  # measuring time per candidate


class HardwareCompatibility(str, Enum):
    none = "none"  # only the GPU architecture it was built on
    ampere_plus = "ampere_plus"  # Ampere and newer GPUs
    same_compute_capability = "same_compute_capability"


class ProfilingVerbosity(str, Enum):
    layer_names_only = "layer_names_only"
    detailed = "detailed"  # tactics per layer in the engine inspector: what the layer hash covers
    none = "none"


@dataclass
class ShapeRange:
    __pydantic_config__ = _STRICT
    input: str = MISSING
    min: list[int] = field(default_factory=list)
    opt: list[int] = field(default_factory=list)
    max: list[int] = field(default_factory=list)


@dataclass
class OptimizationProfile:
    __pydantic_config__ = _STRICT
    shapes: list[ShapeRange] = field(default_factory=list)  # one range per dynamic input


@dataclass
class TensorRTConfig:
    """TensorRT builder settings (target=nvidia; other targets ignore them). Precision is not
    here: it lives in the ONNX graph (TensorRT 11 has no precision flags)."""

    __pydantic_config__ = _STRICT
    workspace_mib: Optional[int] = None  # workspace memory-pool limit; null = TensorRT's default
    optimization_level: int = 3  # builder optimization level, 0..5
    # Required when any model input is dynamic: min/opt/max per dynamic input, per profile.
    profiles: list[OptimizationProfile] = field(default_factory=list)
    timing_cache: Optional[str] = None  # a timing cache file to start from (its sha256 is keyed)
    hardware_compatibility: HardwareCompatibility = HardwareCompatibility.none
    version_compatible: bool = False
    refit: bool = False
    profiling_verbosity: ProfilingVerbosity = ProfilingVerbosity.detailed
    # int8: nodes left in float (Q/DQ-free): `first_conv`, `depthwise_conv` (grouped Conv), or node names.
    int8_keep_float: list[str] = field(default_factory=lambda: ["first_conv", "depthwise_conv"])


@dataclass
class TargetConfig:
    __pydantic_config__ = _STRICT
    name: TargetName = MISSING
    engine: Engine = Engine.auto
    device: str = "CPU"
    tensorrt: TensorRTConfig = field(default_factory=TensorRTConfig)


@dataclass
class PrecisionConfig:
    __pydantic_config__ = _STRICT
    name: PrecisionName = MISSING
    compress_to_fp16: bool = False
    # The runtime's inference precision; null keeps the device default (recorded as resolved).
    inference_precision: Optional[InferencePrecision] = None


@dataclass
class Config:
    __pydantic_config__ = _STRICT
    model: ModelConfig = field(default_factory=ModelConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    # Ordered graph-surgery passes: a name, or {name: ..., <params>}.
    passes: list[Any] = field(default_factory=list)
    calibration: DatasetConfig = field(default_factory=DatasetConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    validate: ValidateConfig = field(default_factory=ValidateConfig)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    precision: PrecisionConfig = field(default_factory=PrecisionConfig)
    out_dir: str = "outputs"
    cache_dir: Optional[str] = None
    debug: bool = False
    progress: bool = True
    # Dry run: source, export and surgery only; print what each pass changed, publish nothing.
    passes_only: bool = False
