"""The `model` section: where the model comes from, what it takes, what it computes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING
from pydantic import ConfigDict, field_validator, model_validator

from optbuild.config.choices import Fit, Pooling, SourceKind, Task, TensorType
from optbuild.config.rules import MAX_SEED, RuleError, within

_STRICT = ConfigDict(extra="forbid")
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
MAX_DIM = 1 << 20
BOUNDS = ("min", "opt", "max")


@dataclass
class DimRange:
    """The sizes one dynamic dimension takes: `opt` is what the build and the data use, `min` and
    `max` bound the OpenVINO IR (target.dynamic_shapes) and the TensorRT optimization profile."""

    __pydantic_config__ = _STRICT
    min: int = 1
    opt: int = 1
    max: int = 1

    @model_validator(mode="after")
    def _ordered(self) -> DimRange:
        if not 1 <= self.min <= self.opt <= self.max <= MAX_DIM:
            raise RuleError("", f"{{key}} is min {self.min}, opt {self.opt}, max {self.max}: need "
                                f"1 <= min <= opt <= max <= {MAX_DIM}")
        return self


@dataclass
class InputSpec:
    __pydantic_config__ = _STRICT
    name: str = "input"
    dtype: TensorType = TensorType.float32
    # Each dimension: a size, or dynamic: -1 or a name (the ONNX graph's symbolic name, e.g. batch).
    shape: list[Any] = field(default_factory=lambda: [1, 3, 224, 224])
    # The range of each dynamic dimension, by its name or its index ("0"). A dynamic batch
    # (index 0) without one is 1..1; every other dynamic dimension needs one.
    dims: dict[Any, DimRange] = field(default_factory=dict)
    # Synthetic data for integer inputs draws from [low, high) (token ids: up to the vocabulary).
    low: Optional[float] = None
    high: Optional[float] = None

    @field_validator("dims", mode="before")
    @classmethod
    def _keys(cls, dims: Any) -> Any:
        """YAML reads `dims: {0: ...}` with an integer key: the same as "0"."""
        return {str(key): value for key, value in dims.items()} if isinstance(dims, dict) else dims

    @field_validator("shape")
    @classmethod
    def _dims(cls, shape: list[Any]) -> list[Any]:
        for axis, dim in enumerate(shape):
            if isinstance(dim, bool) or not (isinstance(dim, (int, str)) and (
                    (isinstance(dim, int) and (dim == -1 or 1 <= dim <= MAX_DIM)) or
                    (isinstance(dim, str) and dim.isidentifier()))):
                raise RuleError("shape", f"{{key}} {shape}: dimension {axis} is {dim!r}; give every dimension as a "
                                         "positive size, or mark it dynamic with -1 or a name (batch, seq)")
        if not shape:
            raise RuleError("shape", "{key} is empty: give the input's dimensions")
        return shape

    @model_validator(mode="after")
    def _ranges(self) -> InputSpec:
        dynamic = {key for axis, key in self.dynamic()}
        for key in self.dims:
            if key not in dynamic:
                raise RuleError(f"dims.{key}", f"input '{self.name}' has a range for '{key}', which is not one of "
                                               f"its dynamic dimensions ({', '.join(sorted(dynamic)) or 'none'})")
        for axis, key in self.dynamic():
            if axis > 0 and key not in self.dims:
                raise RuleError("dims", f"input '{self.name}' dimension {axis} ({self.shape[axis]}) is dynamic: give "
                                        f"its range, model.inputs[].dims.{key}: {{min: ..., opt: ..., max: ...}}")
        return self

    def dynamic(self) -> list[tuple[int, str]]:
        """(axis, the key of its range) for each dynamic dimension."""
        return [(axis, dim if isinstance(dim, str) else str(axis)) for axis, dim in enumerate(self.shape)
                if isinstance(dim, str) or dim == -1]

    def range_of(self, axis: int) -> DimRange:
        key = next(k for a, k in self.dynamic() if a == axis)
        return self.dims.get(key, DimRange())

    def concrete(self, bound: str = "opt") -> list[int]:
        """The shape at `bound` (min, opt or max) of every dynamic dimension."""
        dynamic = dict(self.dynamic())
        return [getattr(self.range_of(axis), bound) if axis in dynamic else int(dim)
                for axis, dim in enumerate(self.shape)]

    @property
    def is_image(self) -> bool:
        """[N, C, H, W] of floats with 1 or 3 channels: what image datasets can feed."""
        return (self.dtype in (TensorType.float32, TensorType.float16) and len(self.shape) == 4
                and self.concrete()[1] in (1, 3))


@dataclass
class Preprocess:
    __pydantic_config__ = _STRICT
    resize: int = 256
    crop: int = 224
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))
    fit: Fit = Fit.crop  # how an image becomes a non-square input (a square one: resize, then crop)

    @model_validator(mode="after")
    def _sizes(self) -> Preprocess:
        if not 0 < self.crop <= self.resize:
            raise RuleError("crop", f"crop {self.crop} must be between 1 and resize {self.resize}")
        if any(s <= 0 for s in self.std):
            raise RuleError("std", f"std {self.std} must be positive")
        return self


@dataclass
class ModelConfig:
    __pydantic_config__ = _STRICT
    # A SourceKind, or the name of a source plugin (entry point group `optbuild.sources`).
    source: str = MISSING
    name: str = MISSING
    # torchvision: a weights name (e.g. IMAGENET1K_V2) or null for seeded random init.
    # efficientnet_lite0: "imagenet" (the pip-shipped file) or null.
    weights: Optional[str] = None
    path: Optional[str] = None  # onnx: the model file; huggingface: the model's folder
    seed: int = 0
    task: Task = Task.classification
    inputs: list[InputSpec] = field(default_factory=lambda: [InputSpec()])
    output_names: list[str] = field(default_factory=lambda: ["logits"])
    preprocess: Preprocess = field(default_factory=Preprocess)
    # huggingface: the output head, and whether it is L2-normalised (sentence-transformers models
    # say so in modules.json: Pooling, Normalize).
    pooling: Pooling = Pooling.none
    normalize: bool = False

    @field_validator("seed")
    @classmethod
    def _seed(cls, value: int) -> int:
        within("seed", value, 0, MAX_SEED)
        return value

    @model_validator(mode="after")
    def _source_fields(self) -> ModelConfig:
        if self.source == SourceKind.onnx and not self.path:
            raise RuleError("path", "model.source=onnx needs model.path: the ONNX file to build from")
        if self.source == SourceKind.huggingface and not (self.path or self.weights):
            raise RuleError("path", "model.source=huggingface needs model.path (the model's folder) or model.weights "
                                    "(a pip package that ships the model)")
        if self.source in (SourceKind.torchvision, SourceKind.efficientnet_lite0) and self.path:
            raise RuleError("path", f"model.path is only read by model.source=onnx or huggingface (this recipe "
                                    f"uses {self.source}); remove it")
        names = [spec.name for spec in self.inputs]
        if not names or len(set(names)) != len(names):
            raise RuleError("inputs", "model.inputs must list at least one input, each with a unique name")
        return self

    def image_input(self) -> InputSpec | None:
        """The input image datasets feed: the first [N, 1|3, H, W] float input."""
        return next((spec for spec in self.inputs if spec.is_image), None)
