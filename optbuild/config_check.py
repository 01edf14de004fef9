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
            "(sample_photos, image_folder or npz)"
        )
    if config.calibration.num_samples < 1 or config.validate.num_samples < 1:
        raise OptbuildError("calibration.num_samples and validate.num_samples must be at least 1")
    if config.benchmark.iterations < 1 or config.benchmark.warmup < 0:
        raise OptbuildError("benchmark.iterations must be >= 1 and benchmark.warmup >= 0")
    names = [spec.name for spec in model.inputs]
    if not names or len(set(names)) != len(names):
        raise OptbuildError("model.inputs must list at least one input, each with a unique name")
    for spec in model.inputs:
        if not spec.shape or any(dim < 1 for dim in spec.shape):
            raise OptbuildError(
                f"model.inputs '{spec.name}' has shape {spec.shape}: give every dimension as a "
                "positive size (use the dynamic_batch pass for a dynamic batch)"
            )
    from optbuild.passes import parse_passes

    parse_passes(config.passes)
