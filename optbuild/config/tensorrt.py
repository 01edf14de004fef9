"""TensorRT builder settings (target.tensorrt)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING
from pydantic import ConfigDict, model_validator

from optbuild.config.choices import (
    HardwareCompatibility,
    HighPrecision,
    Int4Method,
    Int8Calibration,
    ProfilingVerbosity,
)
from optbuild.config.rules import RuleError

_STRICT = ConfigDict(extra="forbid")
INT4_BLOCK_SIZES = (64, 128)  # TensorRT's INT4 block quantization (its quantized-types guide)
HALF_KEEP_FLOAT32_OPS = ("LayerNormalization", "GroupNormalization", "InstanceNormalization", "Softmax", "LogSoftmax",
                         "ReduceMean", "ReduceSum", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp")


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
    # FP32 layers may run on TF32 tensor cores (TensorRT's default on Ampere and newer: faster, 10
    # mantissa bits); false keeps them strict FP32 (trtexec --noTF32). Recorded in the report.
    tf32: bool = True
    profiling_verbosity: ProfilingVerbosity = ProfilingVerbosity.detailed
    # int8: nodes left in float (Q/DQ-free) on top of what NVIDIA's quantizer leaves in float:
    # `first_conv`, `depthwise_conv` (grouped Conv), or node names. None by default: with modelopt's
    # placement EfficientNet-Lite0 keeps CPU-proxy agreement 0.97 with every layer quantized.
    int8_keep_float: list[str] = field(default_factory=list)
    # int8: NVIDIA's quantizer (modelopt) calibration, and the type of the ops it leaves
    # unquantized (fp16, as NVIDIA's tools default to; half_keep_float32_ops stay float32).
    int8_calibration: Int8Calibration = Int8Calibration.max
    int8_high_precision: HighPrecision = HighPrecision.fp16
    # int4: how NVIDIA's quantizer picks the INT4 weights (awq_lite: best measured on MiniLM, and it
    # needs calibration data; rtn_dq needs none), and the weights per scale along the reduction
    # axis (TensorRT takes 64 or 128; MiniLM measured cosine 0.950 at 128, 0.962 at 64).
    int4_method: Int4Method = Int4Method.awq_lite
    int4_block_size: int = 128
    # fp16/bf16: op types left in float32. Normalisation, softmax and reductions accumulate
    # sums whose half-precision rounding (and, for float16, overflow) costs accuracy, transformers
    # most of all. Empty: only what the converter itself must keep.
    half_keep_float32_ops: list[str] = field(default_factory=lambda: list(HALF_KEEP_FLOAT32_OPS))

    @model_validator(mode="after")
    def _bounds(self) -> TensorRTConfig:
        if not 0 <= self.optimization_level <= 5:
            raise RuleError("optimization_level", f"target.tensorrt.optimization_level is "
                                                  f"{self.optimization_level}: use 0..5")
        if self.workspace_mib is not None and self.workspace_mib < 1:
            raise RuleError("workspace_mib", "target.tensorrt.workspace_mib must be a positive number of MiB, "
                                             "or null")
        if self.int4_block_size not in INT4_BLOCK_SIZES:
            sizes = " or ".join(map(str, INT4_BLOCK_SIZES))
            raise RuleError("int4_block_size", f"target.tensorrt.int4_block_size is {self.int4_block_size}: "
                                               f"TensorRT's INT4 weights take blocks of {sizes}")
        return self
