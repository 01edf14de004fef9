"""A Triton Inference Server model: `DIR/<name>/config.pbtxt` and `DIR/<name>/<version>/`.

config.pbtxt is Triton's own `ModelConfig` message (tritonclient's model_config_pb2) in protobuf
text format, so every field name and enum is one Triton parses. An OpenVINO IR runs on the
`openvino` backend with the artifact's runtime properties as backend parameters; a TensorRT engine
on `tensorrt_plan`. A TensorRT kit has no engine yet: its version folder says how to add one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from optbuild.core.files import atomic_write_text
from optbuild.deploy.batching import max_batch
from optbuild.deploy.interface import Interface, Tensor, read_interface
from optbuild.deploy.kit_notes import engine_instructions
from optbuild.deploy.repository import ENGINE, Deployed, Source, place_version, record
from optbuild.errors import OptbuildError
from optbuild.publish.package import FILE_MODE
from optbuild.publish.published import Artifact, ModelKind

log = logging.getLogger("optbuild")
CONFIG = "config.pbtxt"
# numpy names -> Triton's DataType enum (model_config.proto).
DATA_TYPES = {"bool": "TYPE_BOOL", "uint8": "TYPE_UINT8", "uint16": "TYPE_UINT16", "uint32": "TYPE_UINT32",
              "uint64": "TYPE_UINT64", "int8": "TYPE_INT8", "int16": "TYPE_INT16", "int32": "TYPE_INT32",
              "int64": "TYPE_INT64", "float16": "TYPE_FP16", "float32": "TYPE_FP32", "float64": "TYPE_FP64",
              "bfloat16": "TYPE_BF16", "string": "TYPE_STRING", "object": "TYPE_STRING"}
# The OpenVINO properties Triton's openvino backend takes as parameters under the same name
# (openvino_backend src/openvino.cc, ParseParameterHelper); it refuses any other key.
BACKEND_PARAMETERS = ("PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS", "COMPILATION_NUM_THREADS")


def model_config_pb2() -> Any:
    try:
        from tritonclient.grpc import model_config_pb2 as schema
    except (ImportError, RuntimeError) as err:  # tritonclient says RuntimeError when grpcio is missing
        raise OptbuildError("deploy --to triton writes Triton's ModelConfig, which needs tritonclient and grpcio: "
                            "pip install 'optbuild[deploy]'") from err
    return schema


def openvino_parameters(runtime: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(backend parameters, properties the backend cannot take). An f32 precision hint is one of the
    latter: the backend's only precision parameter is HINT_BF16."""
    applied, missing = {}, {}
    for key, value in sorted(runtime["properties"].items()):
        if key in BACKEND_PARAMETERS:
            applied[key] = str(value)
        elif key == "INFERENCE_PRECISION_HINT" and str(value).lower() == "bf16":
            applied["HINT_BF16"] = "YES"
        else:
            missing[key] = str(value)
    if runtime["device"] != "CPU":
        applied["TARGET_DEVICE"] = runtime["device"]
    return applied, missing


def _tensor(message: Any, tensor: Tensor, batched: bool, schema: Any) -> None:
    if tensor.dtype not in DATA_TYPES:
        raise OptbuildError(f"deploy: Triton has no data type for {tensor.name}'s {tensor.dtype}")
    message.name = tensor.name
    message.data_type = schema.DataType.Value(DATA_TYPES[tensor.dtype])
    dims = tensor.shape[1:] if batched else tensor.shape
    if dims:
        message.dims.extend(dims)
    else:  # Triton needs dims: a scalar per batch item is [1] reshaped to []
        message.dims.append(1)
        message.reshape.SetInParent()


def model_config(name: str, artifact: Artifact, interface: Interface, batch: int,
                 parameters: dict[str, str]) -> Any:
    schema = model_config_pb2()
    config = schema.ModelConfig(name=name, max_batch_size=batch)
    if artifact.kind is ModelKind.openvino:
        config.backend = "openvino"
    else:
        config.platform = "tensorrt_plan"
    for tensor in interface.inputs:
        _tensor(config.input.add(), tensor, batch > 0, schema)
    for tensor in interface.outputs:
        _tensor(config.output.add(), tensor, batch > 0, schema)
    if batch > 0:  # Triton groups concurrent requests into one batch, up to max_batch_size
        config.dynamic_batching.SetInParent()
    kind = schema.ModelInstanceGroup.KIND_CPU if artifact.kind is ModelKind.openvino else \
        schema.ModelInstanceGroup.KIND_GPU
    config.instance_group.add(count=1, kind=kind)
    for key, value in parameters.items():
        config.parameters[key].string_value = value
    return config


def _version_files(artifact: Artifact, engine: Path | None) -> dict[str, Source]:
    if engine is not None and artifact.kind is not ModelKind.tensorrt_kit:
        raise OptbuildError(f"deploy: --engine is for a TensorRT kit, and {artifact.label} is an "
                            f"{artifact.kind.value}: leave --engine out")
    if artifact.kind is ModelKind.openvino:
        names = ["model.xml", "model.bin"]
    elif artifact.kind is ModelKind.tensorrt:
        names = [ENGINE]
    else:
        return {ENGINE: engine_source(engine)} if engine is not None else {}
    return {n: Source(artifact.file(n), artifact.sha256(n), "artifact") for n in names}


def engine_source(engine: Path) -> Source:
    from optbuild.core.digest import sha256_file

    if not engine.is_file() or engine.stat().st_size == 0:
        raise OptbuildError(f"deploy: --engine {engine} is not a file; give the model.plan the kit built (its build/)")
    return Source(engine, sha256_file(engine), "--engine")


def deploy(artifact: Artifact, root: Path, name: str, version: int, requested_batch: int | None,
           engine: Path | None, force: bool) -> Deployed:
    interface = read_interface(artifact)
    batch = max_batch(artifact, interface, requested_batch)
    files = _version_files(artifact, engine)
    parameters, missing = openvino_parameters(artifact.runtime()) if artifact.kind is ModelKind.openvino else ({}, {})
    text = _text(model_config(name, artifact, interface, batch, parameters))
    warnings = tuple(f"Triton's openvino backend has no parameter for {k}={v}: on this server the IR runs without "
                     f"it (e.g. in bf16 where the CPU has it, not as validated); --to ovms keeps it"
                     for k, v in missing.items())
    settings = {"max_batch_size": batch, "interface_from": interface.source,
                "backend_parameters": parameters, "not_applied": missing}
    wanted = record(artifact, "triton", name, version, files, settings)
    model_dir = root / name
    model_dir.mkdir(exist_ok=True)
    version_dir = model_dir / str(version)
    notes = {} if ENGINE in files or artifact.kind is not ModelKind.tensorrt_kit else \
        {"README.md": engine_instructions(artifact, version_dir)}
    outcome = place_version(version_dir, files, notes, wanted, force)
    atomic_write_text(model_dir / CONFIG, text, FILE_MODE)
    backend = "backend openvino" if artifact.kind is ModelKind.openvino else "platform tensorrt_plan"
    summary = f"{backend}, max_batch_size {batch}" + (", dynamic batching" if batch else "")
    if notes:
        summary += f"; NO ENGINE YET: {version_dir / 'README.md'} says how to add model.plan"
    for warning in warnings:
        log.warning(warning)
    return Deployed(version_dir, outcome, model_dir / CONFIG, summary, warnings)


def _text(config: Any) -> str:
    from google.protobuf import text_format

    return text_format.MessageToString(config)
