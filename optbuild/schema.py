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


@dataclass
class ValidateConfig(DatasetConfig):
    __pydantic_config__ = _STRICT
    enabled: bool = True
    dataset: Optional[DatasetKind] = DatasetKind.sample_photos
    num_samples: int = 32
    seed: int = 1
    min_top1_agreement: Optional[float] = None
    min_cosine: Optional[float] = None


@dataclass
class BenchmarkConfig:
    __pydantic_config__ = _STRICT
    enabled: bool = True
    iterations: int = 50
    warmup: int = 10


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
    validate: ValidateConfig = field(default_factory=ValidateConfig)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    precision: PrecisionConfig = field(default_factory=PrecisionConfig)
    out_dir: str = "outputs"
    cache_dir: Optional[str] = None
    debug: bool = False
    progress: bool = True
    # Dry run: source, export and surgery only; print what each pass changed, publish nothing.
    passes_only: bool = False
