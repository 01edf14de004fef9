"""ONNX file source: a model file given by path (the path never enters a cache key; its bytes,
and those of its external data files, do)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optbuild.core.digest import sha256_file
from optbuild.errors import OptbuildError, first_line


def checked_path(path: str) -> Path:
    try:
        resolved = Path(path).expanduser().resolve()
        usable = resolved.is_file()
    except (OSError, RuntimeError):  # a symlink loop, a name too long, ...
        resolved, usable = Path(path), False
    if not usable:
        # Hydra keeps the working directory, so a relative path is read from where optbuild runs.
        where = "" if Path(path).expanduser().is_absolute() else f" (looked for {resolved})"
        raise OptbuildError(f"model.path '{path}' is not a file{where}: give the path of an .onnx model")
    return resolved


def external_data_files(path: Path) -> list[Path]:
    """The files a model keeps its weights in (ONNX external data), read from the model's graph
    without loading the weights. Each must sit in the model's folder or below it."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # noqa: BLE001 - protobuf errors mean "not a model"
        first = first_line(err)
        raise OptbuildError(f"model.path '{path}' is not a valid ONNX model: {first}") from err
    folder = path.parent
    files = set()
    for tensor in _tensors(model.graph):
        if not uses_external_data(tensor):
            continue
        location = (folder / ExternalDataInfo(tensor).location).resolve()
        if not location.is_relative_to(folder):
            raise OptbuildError(
                f"model.path '{path}' keeps tensor '{tensor.name}' outside its folder "
                f"({ExternalDataInfo(tensor).location}); move the data file next to the model"
            )
        if not location.is_file():
            raise OptbuildError(
                f"model.path '{path}' keeps its weights in '{location.name}', which is missing: "
                "copy the data file next to the model"
            )
        files.add(location)
    return sorted(files)


def _tensors(graph: Any) -> list[Any]:
    """Initializers and tensor attributes of a graph and its subgraphs."""
    found = list(graph.initializer)
    for node in graph.node:
        for attribute in node.attribute:
            found += [attribute.t] if attribute.HasField("t") else []
            found += list(attribute.tensors)
            for sub in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                found += _tensors(sub)
    return found


def source_identity(path: str) -> dict[str, Any]:
    resolved = checked_path(path)
    identity: dict[str, Any] = {"onnx_sha256": sha256_file(resolved)}
    data = external_data_files(resolved)
    if data:  # external weights: their content, under their names relative to the model
        identity["external_data_sha256"] = {
            str(p.relative_to(resolved.parent)): sha256_file(p) for p in data
        }
    return identity


def import_onnx(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """Stage `source` for ONNX files: load (with external data), check, and store one copy
    (weights in `model.onnx.data` when the model is too large for one protobuf)."""
    import onnx

    from optbuild.passes.onnx_io import is_large, load, save

    path = checked_path(params["model"])
    try:
        model = load(path)
        onnx.checker.check_model(str(path) if is_large(model) else model)
    except Exception as err:  # noqa: BLE001 - protobuf and checker errors both mean "not a model"
        first = first_line(err)
        raise OptbuildError(f"model.path '{params['model']}' is not a valid ONNX model: {first}") from err
    if not model.graph.node:
        raise OptbuildError(f"model.path '{params['model']}' has no nodes (its outputs are its inputs): there is "
                            "nothing to build; export the model with its layers")
    files = save(model, Path(out_dir, "model.onnx"))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return {"files": files, "data": {"opset": opset, "external_data": len(files) > 1}}
