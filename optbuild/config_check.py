"""Validation of the composed config: the schema again (catches `+key=`), then cross-field rules."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticError

from optbuild.config_errors import unknown_key
from optbuild.errors import OptbuildError
from optbuild.schema import Config, PrecisionName, SourceKind

_ADAPTER = TypeAdapter(Config)


def _pydantic_line(err: PydanticError) -> str:
    first = err.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    if first["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
        return unknown_key(key)
    return f"invalid value for config key '{key}': {first['msg']}"


def check(container: dict[str, Any]) -> Config:
    """The composed config as a typed `Config`, or an OptbuildError naming the bad key."""
    try:
        config = _ADAPTER.validate_python(container)
    except PydanticError as err:
        raise OptbuildError(_pydantic_line(err)) from err
    _cross_field_rules(config)
    return config


def _cross_field_rules(config: Config) -> None:
    model = config.model
    from optbuild.sources import check_name

    check_name(model.source)
    if model.source == SourceKind.onnx and not model.path:
        raise OptbuildError("model.source=onnx needs model.path: the ONNX file to build from")
    if model.source in (SourceKind.torchvision, SourceKind.efficientnet_lite0) and model.path:
        raise OptbuildError(
            f"model.path is only read by model.source=onnx (this recipe uses {model.source}); "
            "remove it"
        )
    if config.precision.name is PrecisionName.int8 and config.calibration.dataset is None:
        raise OptbuildError(
            "precision=int8 needs a calibration dataset: set calibration.dataset "
            "(sample_photos, image_folder, npz or fashion_mnist)"
        )
    if config.calibration.num_samples < 1 or config.validate.num_samples < 1:
        raise OptbuildError("calibration.num_samples and validate.num_samples must be at least 1")
    if config.benchmark.iterations < 1 or config.benchmark.warmup < 0:
        raise OptbuildError("benchmark.iterations must be >= 1 and benchmark.warmup >= 0")
    if not config.benchmark.throughput_seconds > 0:
        raise OptbuildError(f"benchmark.throughput_seconds={config.benchmark.throughput_seconds} must be > 0")
    names = [spec.name for spec in model.inputs]
    if not names or len(set(names)) != len(names):
        raise OptbuildError("model.inputs must list at least one input, each with a unique name")
    for spec in model.inputs:
        if not spec.shape or any(dim < 1 for dim in spec.shape):
            raise OptbuildError(
                f"model.inputs '{spec.name}' has shape {spec.shape}: give every dimension as a "
                "positive size (use the dynamic_batch pass for a dynamic batch)"
            )
    _validation_rules(config)
    from optbuild.passes import parse_passes

    parse_passes(config.passes)


_NEEDS_LABELS = ("max_top1_drop", "max_top5_drop", "min_top1")


def _validation_rules(config: Config) -> None:
    """Gate and accuracy-control values in range; what needs labels not on data without them."""
    rules, control = config.validate, config.quantize.accuracy_control
    for key in ("min_top1_agreement", "min_cosine", "max_top1_drop", "max_top5_drop", "min_top1"):
        value = getattr(rules, key)
        if value is not None and not -1.0 <= value <= 1.0:
            raise OptbuildError(f"validate.{key}={value} is out of range: these are fractions (0.01 = one point)")
    if not 0.0 <= control.max_drop <= 1.0:
        raise OptbuildError(f"quantize.accuracy_control.max_drop={control.max_drop} must be a fraction in 0..1 "
                            "(0.01 = one point)")
    if control.max_iterations is not None and control.max_iterations < 1:
        raise OptbuildError("quantize.accuracy_control.max_iterations must be >= 1, or null")
    kind = rules.dataset.value if rules.dataset else None
    if kind not in ("sample_photos", "npz"):
        return
    needs = [f"validate.{key}" for key in _NEEDS_LABELS if getattr(rules, key) is not None]
    if control.enabled and control.metric.value == "top1" and config.precision.name is PrecisionName.int8:
        needs.append("quantize.accuracy_control.metric=top1")
    if needs:
        raise OptbuildError(f"{needs[0]} needs labels but validate.dataset={kind} has none: use a labeled set "
                            "(image_folder with class folders, or fashion_mnist) or drop it")
