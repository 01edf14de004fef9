"""Typed schema of the composed config, with every value and cross-field rule on it.

The same dataclasses serve twice: Hydra/OmegaConf use them as the structured base config (typos
in recipe files and plain overrides fail during composition, with the full key), and pydantic
validates the composed result again (`config/validate.py`) with `extra="forbid"`, because
`+key=value` bypasses OmegaConf's struct checks. The validators below run then: a rule broken is
one `RuleError` naming its key. Defaults live here and nowhere else (conf/target/*.yaml only
choose values that differ).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, is_dataclass
from enum import Enum
from typing import Any, Optional

from omegaconf import MISSING
from pydantic import ConfigDict, ValidationInfo, field_validator, model_validator

from optbuild.config.choices import (
    ALLOWED_INFERENCE_PRECISIONS,
    IMAGE_KINDS,
    AccuracyMetric,
    DatasetKind,
    Engine,
    InferencePrecision,
    ModelType,
    Objective,
    PerformanceHint,
    PrecisionName,
    TargetName,
)
from optbuild.config.datasets import DatasetConfig, ValidateConfig
from optbuild.config.model import ModelConfig
from optbuild.config.rules import MAX_SECONDS, RuleError, at_least, within
from optbuild.config.serve import ServeConfig
from optbuild.config.tensorrt import TensorRTConfig

_STRICT = ConfigDict(extra="forbid")
_TOKEN = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def as_data(value: Any) -> Any:
    """Dataclasses and enums as JSON-able data."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, dict):
        return {k: as_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_data(v) for v in value]
    return value.value if isinstance(value, Enum) else value


@dataclass
class ExportConfig:
    __pydantic_config__ = _STRICT
    opset: int = 17

    @field_validator("opset")
    @classmethod
    def _opset(cls, value: int) -> int:
        within("opset", value, 7, 30, " (an ONNX opset)")
        return value


@dataclass
class AccuracyControl:
    """INT8 that keeps its most sensitive layers in higher precision until the drop on the
    validation set is at most `max_drop` (intel: NNCF's quantize_with_accuracy_control)."""

    __pydantic_config__ = _STRICT
    enabled: bool = False
    max_drop: float = 0.01  # absolute, in the metric's 0..1 units (0.01 = one point)
    # auto (top-1 with labels, else agreement), top1, agreement, or a validation metric by name
    # (higher is better, e.g. cosine, mask_iou, sequence_agreement): measured on the first output.
    metric: str = AccuracyMetric.auto.value
    # A bound on the search (null: until max_drop is met): intel, NNCF's revert-and-check rounds;
    # nvidia, the number of layers it may keep in float.
    max_iterations: Optional[int] = None

    @model_validator(mode="after")
    def _bounds(self) -> AccuracyControl:
        if not 0.0 <= self.max_drop <= 1.0:
            raise RuleError("max_drop", f"quantize.accuracy_control.max_drop={self.max_drop} must be a fraction "
                                        "in 0..1 (0.01 = one point)")
        if self.max_iterations is not None and self.max_iterations < 1:
            raise RuleError("max_iterations", "quantize.accuracy_control.max_iterations must be >= 1, or null")
        return self


@dataclass
class QuantizeConfig:
    __pydantic_config__ = _STRICT
    accuracy_control: AccuracyControl = field(default_factory=AccuracyControl)
    # intel (NNCF): `transformer` applies NNCF's transformer settings (attention patterns kept in
    # float, SmoothQuant on MatMul inputs); null: its defaults for CNNs.
    model_type: Optional[ModelType] = None
    # SmoothQuant's alpha on MatMul inputs (transformer): null keeps NNCF's default, -1 turns it off.
    smooth_quant_alpha: Optional[float] = None

    @model_validator(mode="after")
    def _alpha(self) -> QuantizeConfig:
        alpha = self.smooth_quant_alpha
        if alpha is not None and alpha != -1 and not 0 <= alpha <= 1:
            raise RuleError("smooth_quant_alpha", f"quantize.smooth_quant_alpha={alpha} must be in 0..1, or -1 (off)")
        return self


@dataclass
class BenchmarkConfig:
    __pydantic_config__ = _STRICT
    enabled: bool = True
    iterations: int = 50
    warmup: int = 10
    throughput_seconds: float = 3.0  # async throughput: how long each model runs with all requests busy
    torch_baseline: bool = True  # also time the torch eager model when the source is a torch model
    # Any token (a date, a counter): it enters the benchmark stage's cache key, so a new token
    # measures again instead of reusing a benchmark cached earlier (e.g. under a busy sweep).
    remeasure: Optional[str] = None

    @field_validator("remeasure")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is not None and not _TOKEN.fullmatch(value):
            raise RuleError("remeasure", f"benchmark.remeasure={value!r} must be a short token: 1 to 64 letters, "
                                         "digits or . _ - : (e.g. benchmark.remeasure=2026-11-25)")
        return value

    @model_validator(mode="after")
    def _bounds(self) -> BenchmarkConfig:
        at_least("iterations", self.iterations, 1)
        at_least("warmup", self.warmup, 0)
        within("iterations", self.iterations, 1, 100_000)
        within("warmup", self.warmup, 0, 10_000)
        within("throughput_seconds", self.throughput_seconds, 0, MAX_SECONDS, " (seconds)")
        if not self.throughput_seconds > 0:
            raise RuleError("throughput_seconds", f"benchmark.throughput_seconds={self.throughput_seconds} "
                                                  "must be > 0")
        return self


@dataclass
class TuneConfig:
    """Runtime tuning (intel): a bounded search over these settings for the objective. The
    winner goes into the manifest and the artifact's runtime.json."""

    __pydantic_config__ = _STRICT
    enabled: bool = False
    objective: Objective = Objective.throughput
    hints: list[PerformanceHint] = field(default_factory=lambda: [PerformanceHint.LATENCY,
                                                                   PerformanceHint.THROUGHPUT])
    streams: list[int] = field(default_factory=lambda: [0, 1, 2])  # 0: the hint's own choice
    batches: list[int] = field(default_factory=lambda: [1, 2, 4])
    # null: what the precision allows (int8: the device default and f32; fp32: f32 only; ...)
    inference_precisions: Optional[list[InferencePrecision]] = None
    seconds: float = 1.5  # measuring time per candidate

    @model_validator(mode="after")
    def _space(self) -> TuneConfig:
        if not self.hints:
            raise RuleError("hints", f"tune.hints=[] must list one or more of {', '.join(PerformanceHint.values())}")
        if not self.streams or any(n < 0 for n in self.streams):
            raise RuleError("streams", f"tune.streams={self.streams} must list stream counts >= 0 (0: the hint's "
                                       "choice)")
        if not self.batches or any(n < 1 for n in self.batches):
            raise RuleError("batches", f"tune.batches={self.batches} must list batch sizes >= 1")
        within("seconds", self.seconds, 0, MAX_SECONDS, " (seconds per candidate)")
        within("streams", max(self.streams, default=0), 0, 256, " (largest stream count)")
        within("batches", max(self.batches, default=1), 1, 4096, " (largest batch)")
        if not self.seconds > 0:
            raise RuleError("seconds", f"tune.seconds={self.seconds} must be > 0 (measuring time per candidate)")
        return self


@dataclass
class TargetConfig:
    __pydantic_config__ = _STRICT
    name: TargetName = MISSING
    engine: Engine = Engine.auto
    device: str = "CPU"
    # intel: keep the inputs' dynamic dimensions dynamic in the IR, bounded by their min..max
    # (false: the IR is reshaped to the opt sizes, which OpenVINO runs fastest).
    dynamic_shapes: bool = False
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
    serve: ServeConfig = field(default_factory=ServeConfig)
    out_dir: str = "outputs"
    cache_dir: Optional[str] = None
    debug: bool = False
    progress: bool = True
    # Dry run: source, export and surgery only; print what each pass changed, publish nothing.
    passes_only: bool = False

    @field_validator("out_dir", "cache_dir")
    @classmethod
    def _place(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not value.strip():
            raise RuleError(str(info.field_name), f"{info.field_name} is empty: give a directory (or leave it out for "
                                                  "the default)")
        return value

    @model_validator(mode="after")
    def _cross_sections(self) -> Config:
        name = self.precision.name
        if name.nvidia_only and self.target.name is not TargetName.nvidia:
            what = {PrecisionName.fp8: "TensorRT on GPUs with FP8 tensor cores",
                    PrecisionName.int4: "TensorRT's INT4 weight-only GEMMs"}[name]
            raise RuleError("precision", f"precision={name.value} is for target=nvidia ({what}); "
                            f"target={self.target.name.value} builds fp32, fp16, bf16 or int8")
        if self.calibrates() and self.calibration.dataset is None:
            method = f" with target.tensorrt.int4_method={self.target.tensorrt.int4_method.value}" \
                if name is PrecisionName.int4 else ""
            also = " (or use target.tensorrt.int4_method=rtn_dq, which needs none)" if method else ""
            raise RuleError("calibration.dataset", f"precision={name.value}{method} needs a calibration dataset: set "
                            f"calibration.dataset ({', '.join(DatasetKind.values())}){also}")
        control = self.quantize.accuracy_control
        if name is PrecisionName.int4 and control.enabled:
            raise RuleError("quantize.accuracy_control.enabled", "quantize.accuracy_control keeps INT8/FP8 layers "
                            "in float; precision=int4 is weight-only and has no such search: drop it or use int8")
        int8 = name.quantized
        if int8 and control.enabled and control.metric == AccuracyMetric.top1 and self.validate.unlabeled:
            raise RuleError("quantize.accuracy_control.metric", "quantize.accuracy_control.metric=top1 needs "
                            f"labels but validate.dataset={as_data(self.validate.dataset)} has none: use a labeled "
                            "set (image_folder with class folders, or fashion_mnist) or drop it")
        self._image_data_fits_the_input()
        self._tune_precisions()
        self._profiles_name_inputs()
        self._serve()
        return self

    def embeds_preprocess(self) -> bool:
        """Whether the artifact takes client pixels: serve.embed_preprocess, or when null, an image
        recipe (one image input, validated on images or synthetic data)."""
        return self.serve.embed_preprocess if self.serve.embed_preprocess is not None else not self._why_not_embed()

    def _why_not_embed(self) -> str | None:
        names = [entry if isinstance(entry, str) else entry.get("name") if isinstance(entry, dict) else None
                 for entry in self.passes]
        if "embed_preprocess" in names:
            return "the recipe's embed_preprocess pass already makes the graph take pixels (drop the pass)"
        image = self.model.image_input()
        if image is None or len(self.model.inputs) != 1:
            return "it needs exactly one model input of [N, 1|3, H, W] floats (an image)"
        if self.validate.enabled and self.validate.dataset not in (*IMAGE_KINDS, DatasetKind.synthetic):
            return (f"validation feeds the artifact what a client sends (pixels), but validate.dataset="
                    f"{as_data(self.validate.dataset)} is not images: use an image or synthetic dataset")
        return None

    def _serve(self) -> None:
        serve = self.serve
        if serve.embed_preprocess:
            why = self._why_not_embed()
            if why:
                raise RuleError("serve.embed_preprocess", f"serve.embed_preprocess=true: {why}")
        embeds = self.embeds_preprocess()
        if serve.resize and not embeds:
            raise RuleError("serve.resize", "serve.resize=true resizes client pixels inside the artifact: it needs "
                                            "serve.embed_preprocess (an image recipe)")
        if serve.resize and self.target.name is TargetName.nvidia:
            raise RuleError("serve.resize", "serve.resize=true is for target=intel (OpenVINO resizes inside the IR); "
                                            "for nvidia, clients send pixels at the input's size")
        image = self.model.image_input()
        if embeds and image is not None and image.concrete()[1] == 1 and serve.color.value == "BGR":
            raise RuleError("serve.color", f"serve.color=BGR: input '{image.name}' has one channel (grayscale)")

    def calibrates(self) -> bool:
        """Whether the build quantizes with calibration data: int8, fp8, and int4 unless its method
        is round-to-nearest."""
        name = self.precision.name
        if name is PrecisionName.int4:
            return self.target.tensorrt.int4_method.calibrates
        return name.quantized

    def _image_data_fits_the_input(self) -> None:
        """Image datasets decode to one image input: the model must have one, and no other."""
        calibrates = self.calibrates() or (
            self.target.name is TargetName.nvidia and self.precision.name is PrecisionName.fp16)
        used = [("calibration", self.calibration)] if calibrates else []
        used += [("validate", self.validate)] if self.validate.enabled else []
        sections = [(name, s) for name, s in used if s.dataset in IMAGE_KINDS]
        if not sections:
            return
        section, _ = sections[0]
        image = self.model.image_input()
        if image is None:
            raise RuleError(f"{section}.dataset", f"{section}.dataset={as_data(sections[0][1].dataset)} decodes images, "
                            "but no model input is [N, 1|3, H, W] floats: use an npz, text or synthetic dataset")
        others = [spec.name for spec in self.model.inputs if spec is not image]
        if others:
            raise RuleError(f"{section}.dataset", f"{section}.dataset={as_data(sections[0][1].dataset)} feeds only the "
                            f"image input '{image.name}', but the model also takes {', '.join(others)}: use an npz "
                            "dataset (one array per input) or a synthetic one")
        channels = image.concrete()[1]
        for name in ("mean", "std"):
            values = getattr(self.model.preprocess, name)
            if len(values) not in (channels, 3):  # 1 channel may use the RGB list's first
                raise RuleError(f"model.preprocess.{name}", f"preprocess {name} {values} needs {channels} values")

    def _tune_precisions(self) -> None:
        chosen = self.tune.inference_precisions
        if not self.tune.enabled or chosen is None:
            return
        allowed = ALLOWED_INFERENCE_PRECISIONS[self.precision.name]
        if not chosen or any(p not in allowed for p in chosen):
            raise RuleError("tune.inference_precisions", f"tune.inference_precisions={as_data(chosen)} for precision="
                            f"{self.precision.name.value}: use a subset of {[p.value for p in allowed]} (never "
                            "less precise than the build), or null for the default")

    def _profiles_name_inputs(self) -> None:
        names = {spec.name for spec in self.model.inputs}
        for number, profile in enumerate(self.target.tensorrt.profiles):
            for shape_range in profile.shapes:
                if shape_range.input not in names:
                    raise RuleError(f"target.tensorrt.profiles.{number}", f"target.tensorrt.profiles[{number}] "
                                    f"names input '{shape_range.input}', which is not in model.inputs "
                                    f"({', '.join(sorted(names))})")
